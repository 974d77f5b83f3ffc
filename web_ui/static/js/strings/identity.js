// Strings for the identity check's three verdicts on the secretary's panel (issue 16).
// Russian first, English key for key (tests/test_browser.py checks both).
export const ru = {
  identityEnlarge: "Сравнить крупно",
  verdict_look_closely: "Посмотрите внимательно",
  identityLookCloselyExplain: "На таком расстоянии модель не различает надёжно этих двух людей. Сравните лицо и фотографию в документе сами: решение принимаете вы.",
  identityBandLine: "расстояние {distance} в полосе {low}–{high}",
  identityCompare_live: "Лицо в кадре",
  identityCompare_document: "Фото в документе",
};

export const en = {
  identityEnlarge: "Compare large",
  verdict_look_closely: "Look closely",
  identityLookCloselyExplain: "At this distance the model cannot reliably tell these two people apart. Compare the face with the photo in the document yourself: you decide.",
  identityBandLine: "distance {distance} in the band {low}–{high}",
  identityCompare_live: "Face in view",
  identityCompare_document: "Photo in the document",
};
