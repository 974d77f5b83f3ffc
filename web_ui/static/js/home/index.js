// The personal page an invite link opens first: the day card with "Enter the room",
// then what the person's role prepares or follows outside the sitting. Resolves when
// they press "Enter the room".
import { clear, h } from "../dom.js";
import { state } from "../store.js";
import { dayCard } from "./common.js";
import { commissionHome } from "./commission.js";
import { secretaryHome } from "./secretary.js";
import { studentHome } from "./student.js";

export function home(section) {
  return new Promise((resolve) => {
    const role = state.me.me.role;
    const page = role === "secretary" ? secretaryHome : role === "student" ? studentHome : commissionHome;
    clear(section, h("div", { class: `home home-${role}` }, dayCard({ onEnter: resolve }), page()));
  });
}
