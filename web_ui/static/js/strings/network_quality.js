// Strings for the quality of a participant's link: the pre-join check over the media
// path, and the secretary's notices when a student's link drops under rule P5.
// Russian first, English key for key (tests/test_browser.py checks both).
export const ru = {
  netPathMedia: "Измерено по каналу видеосвязи, задержка {rtt} мс.",
  netPathHttp: "Канал видеосвязи из этой сети открыть не удалось, скорость измерена по HTTP; видео через эту сеть может не пройти.",
  netPoorDefense: "Для защиты этого мало: комиссия не сможет нормально видеть и слышать вас.",
  noticeLinkLow: "Связь: {name} — сервер получает {kbps} кбит/с, меньше необходимых {minimum} кбит/с",
  noticeLinkRestored: "Связь: {name} — снова {kbps} кбит/с, связь восстановилась",
};

export const en = {
  netPathMedia: "Measured over the video connection; round trip {rtt} ms.",
  netPathHttp: "The video connection could not be opened from this network, so the speed was measured over HTTP; video may not get through this network.",
  netPoorDefense: "This is too slow for the defense: the commission will not see and hear you properly.",
  noticeLinkLow: "Connection: the server receives {kbps} kbit/s from {name}, under the {minimum} kbit/s required",
  noticeLinkRestored: "Connection: {name} is back at {kbps} kbit/s",
};
