// Strings for the secretary's preparation view and the hand-over after the sitting.
// Russian first, English key for key (tests/test_browser.py checks both).
export const ru = {
};

export const en = {
};
