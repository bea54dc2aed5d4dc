// Assessment report: the print button (the print stylesheet does the rest).
document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("assessment-print");
  if (button) button.addEventListener("click", () => window.print());
});
