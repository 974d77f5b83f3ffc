// Strings for the student's own page: consent, documents, results.
// Russian first, English key for key (tests/test_browser.py checks both).
export const ru = {
};

export const en = {
};
