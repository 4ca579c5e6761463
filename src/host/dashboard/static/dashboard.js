// The dashboard's only script of its own (no inline script: the Content-Security-Policy
// forbids it). A "select all" box ticks every job box of its table.
document.addEventListener("change", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement) || !box.classList.contains("select-all")) return;
  const table = box.closest("table");
  if (!table) return;
  for (const other of table.querySelectorAll('input[name="ids"]')) other.checked = box.checked;
});
