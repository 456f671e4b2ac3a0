// The listing page's selection helpers: "Select all on this page" and the
// count of ticked files. The page works without them (each file has its
// own checkbox, and "Download all as ZIP" takes everything).
(function () {
  "use strict";
  var all = document.getElementById("select-all");
  var count = document.getElementById("picked");
  if (!all || !count) return;
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input[name=file_id]"));
  if (!boxes.length) return;
  function update() {
    var n = 0;
    boxes.forEach(function (box) {
      if (box.checked) n += 1;
      var card = box.closest(".card");
      if (card) card.classList.toggle("picked", box.checked);
    });
    count.textContent = n + " selected";
    all.checked = n === boxes.length;
    all.indeterminate = n > 0 && n < boxes.length;
  }
  all.addEventListener("change", function () {
    boxes.forEach(function (box) { box.checked = all.checked; });
    update();
  });
  boxes.forEach(function (box) { box.addEventListener("change", update); });
  all.closest("[hidden]").hidden = false;
  update();
})();
