// Strings for the department office's page (/office).
// Russian first, English key for key (tests/test_browser.py checks both).
export const ru = {
};

export const en = {
};
