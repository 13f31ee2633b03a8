// After django-otp-webauthn saves a new passkey, go where the page says (CSP: no inline JS).
document.addEventListener("otp_webauthn.register_complete", function () {
  const holder = document.querySelector("[data-passkey-done-url]");
  const target = holder ? holder.getAttribute("data-passkey-done-url") : "";
  if (target) {
    window.location.assign(target);
  } else {
    window.location.reload();
  }
});
