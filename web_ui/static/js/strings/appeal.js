// Strings for appeals from the pages: the student's appeal, the chair's conclusion, scheduling, the appeal sitting's controls.
// Russian first, English key for key (tests/test_browser.py checks both).
export const ru = {
};

export const en = {
};
