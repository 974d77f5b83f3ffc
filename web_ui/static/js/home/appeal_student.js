// The student's appeal (section 8): filing it until the deadline, the appeal
// sitting's link once scheduled, the decision once delivered (8.11).
import { h } from "../dom.js";

export function appealSection() {
  return h("div", { class: "home-appeal", hidden: true });
}
