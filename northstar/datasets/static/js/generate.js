// The generate form's presets: choosing one fills the columns box with the preset's columns, to keep or edit.
const presets = JSON.parse(document.getElementById("presets")?.textContent ?? "{}");
const select = document.getElementById("field-preset");
const columns = document.getElementById("field-columns");

select?.addEventListener("change", () => {
  const preset = presets[select.value];
  columns.value = preset ? JSON.stringify(preset.columns, null, 2) : "";
});
