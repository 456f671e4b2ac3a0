// The visitor pages' script: what cannot be done without one, on pages
// that work without it. Times in the visitor's own zone; on a file page,
// the previous and next files by arrow keys and by swiping the preview.
(function () {
  "use strict";

  var zoned;
  try {
    zoned = new Intl.DateTimeFormat(undefined, {
      day: "numeric", month: "long", year: "numeric",
      hour: "2-digit", minute: "2-digit", timeZoneName: "short"
    });
  } catch (e) {
    zoned = null;
  }
  if (zoned) {
    var times = document.querySelectorAll("time.local[datetime]");
    for (var i = 0; i < times.length; i++) {
      var when = new Date(times[i].getAttribute("datetime"));
      if (!isNaN(when.getTime())) {
        times[i].textContent = zoned.format(when);
      }
    }
  }

  var previous = document.getElementById("previous");
  var next = document.getElementById("next");
  if (!previous && !next) {
    return;
  }
  function go(link) {
    if (link) {
      window.location.assign(link.href);
    }
  }

  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) {
      return;
    }
    var target = e.target;
    // Arrow keys move the caret in a field and seek in a player.
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT|VIDEO|AUDIO)$/.test(target.tagName))) {
      return;
    }
    if (e.key === "ArrowLeft") {
      go(previous);
    } else if (e.key === "ArrowRight") {
      go(next);
    }
  });

  var stage = document.querySelector(".preview");
  if (!stage) {
    return;
  }
  var startX = null;
  var startY = 0;
  stage.addEventListener("touchstart", function (e) {
    startX = e.touches.length === 1 ? e.touches[0].clientX : null;
    startY = e.touches.length === 1 ? e.touches[0].clientY : 0;
  }, { passive: true });
  stage.addEventListener("touchend", function (e) {
    if (startX === null || e.changedTouches.length !== 1) {
      return;
    }
    var dx = e.changedTouches[0].clientX - startX;
    var dy = e.changedTouches[0].clientY - startY;
    startX = null;
    // A clear horizontal swipe: to the left shows the next file.
    if (Math.abs(dx) > 50 && Math.abs(dx) > 2 * Math.abs(dy)) {
      go(dx < 0 ? next : previous);
    }
  }, { passive: true });
})();
