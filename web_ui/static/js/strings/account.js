// Strings for the personal page every invite link opens first (date, time, enter the room).
// Russian first, English key for key (tests/test_browser.py checks both).
export const ru = {
  homeStarts: "Начало: {when} ({zone})",
  homeDayZone: "По времени заседания: {when} ({zone})",
  homeEnter: "Войти в комнату заседания",
  homeEnterHint: "Перед входом страница проверит камеру, микрофон и связь.",
  homeBack: "Моя страница",
};

export const en = {
  homeStarts: "Starts: {when} ({zone})",
  homeDayZone: "In the sitting's time: {when} ({zone})",
  homeEnter: "Enter the sitting room",
  homeEnterHint: "Before you enter, the page checks your camera, microphone and connection.",
  homeBack: "My page",
};
