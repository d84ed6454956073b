// Comforts only: every page works without this file.
// - A form with data-confirm asks before it is sent.
// - On the first page of the call history, "refresh every 5 s" reloads it while ticked.
"use strict";

document.addEventListener("submit", (event) => {
  const question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("auto-refresh");
  if (!box) return;
  const key = "herald-auto-refresh";
  box.checked = sessionStorage.getItem(key) === "on";
  let timer = null;
  const arm = () => {
    clearTimeout(timer);
    if (box.checked) timer = setTimeout(() => window.location.reload(), 5000);
  };
  box.addEventListener("change", () => {
    sessionStorage.setItem(key, box.checked ? "on" : "off");
    arm();
  });
  arm();
});
