// The student's own page: consent, their documents, the device check, results;
// the appeal part is home/appeal_student.js.
import { h } from "../dom.js";
import { appealSection } from "./appeal_student.js";

export function studentHome() {
  return h("div", { class: "home-sections" }, appealSection());
}
