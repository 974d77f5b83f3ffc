// Strings for browsers that cannot take part: no WebRTC at all (WebKitGTK on Debian)
// or no camera access for pages (some in-app browsers), said on the pre-join page.
// Russian first, English key for key (tests/test_browser.py checks both).
export const ru = {
  browserNoWebrtc: "Этот браузер не поддерживает видеосвязь (WebRTC), поэтому войти из него в комнату нельзя.",
  browserNoCamera: "Этот браузер не даёт страницам доступа к камере и микрофону.",
  browserUseInstead: "Откройте ссылку-приглашение в свежей версии Chrome, Firefox, Safari или Edge, а на телефоне — в его основном браузере (Chrome на Android, Safari на iPhone), не во встроенном браузере приложения.",
  browserCannotEnter: "Вход из этого браузера невозможен",
};

export const en = {
  browserNoWebrtc: "This browser does not support video calls (WebRTC), so you cannot enter the room from it.",
  browserNoCamera: "This browser does not give pages access to the camera and microphone.",
  browserUseInstead: "Open the invite link in a current Chrome, Firefox, Safari or Edge, or on a phone in its own browser (Chrome on Android, Safari on iPhone), not in an app's built-in browser.",
  browserCannotEnter: "You cannot enter from this browser",
};
