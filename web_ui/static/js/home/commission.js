// The page of the chair, the members, supervisors, reviewers, observers and the appeal commission.
import { h } from "../dom.js";

export function commissionHome() {
  return h("div", { class: "home-sections" });
}
