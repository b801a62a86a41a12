// Keyboard and click navigation for one deck: → / space / PageDown next, ← / PageUp back,
// Home / End, "n" toggles the speaker notes, "p" opens a presenter window (this deck with its
// notes) that follows the projected one, and the other way round. The URL's #N is the slide.
(function () {
  "use strict";
  var deck = document.querySelector(".deck");
  var slides = Array.prototype.slice.call(document.querySelectorAll(".slide"));
  var counter = document.querySelector(".counter");
  var isPresenter = /[?&]presenter\b/.test(location.search);
  var presenter = null;
  var current = 0;

  if (isPresenter) { deck.classList.add("show-notes"); document.title += " (presenter)"; }

  function show(index, fromPeer) {
    current = Math.max(0, Math.min(slides.length - 1, index));
    slides.forEach(function (slide, i) { slide.classList.toggle("current", i === current); });
    counter.textContent = (current + 1) + " / " + slides.length;
    if (location.hash !== "#" + (current + 1)) { history.replaceState(null, "", "#" + (current + 1)); }
    if (fromPeer) { return; }
    var peer = isPresenter ? window.opener : presenter;
    if (peer && !peer.closed) { peer.postMessage({ courseDeckSlide: current }, "*"); }
  }

  function fromHash() {
    var n = parseInt(location.hash.slice(1), 10);
    return isNaN(n) ? 0 : n - 1;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }  // Ctrl+P prints, as usual
    var moves = { ArrowRight: 1, " ": 1, PageDown: 1, ArrowLeft: -1, PageUp: -1 };
    if (event.key in moves) { show(current + moves[event.key]); event.preventDefault(); }
    else if (event.key === "Home") { show(0); }
    else if (event.key === "End") { show(slides.length - 1); }
    else if (event.key === "n") { deck.classList.toggle("show-notes"); }
    else if (event.key === "p" && !isPresenter) {
      presenter = window.open("?presenter#" + (current + 1), "course-presenter", "width=1100,height=720");
    }
  });
  deck.addEventListener("click", function (event) {
    if (event.target.closest("a, aside.notes, pre")) { return; }  // links, notes, code: no paging
    show(current + (event.clientX > window.innerWidth / 3 ? 1 : -1));
  });
  window.addEventListener("message", function (event) {
    var peer = isPresenter ? window.opener : presenter;
    if (event.source !== peer) { return; }  // only the deck's own presenter window, or its opener
    if (event.data && typeof event.data.courseDeckSlide === "number") { show(event.data.courseDeckSlide, true); }
  });
  window.addEventListener("hashchange", function () { show(fromHash()); });
  window.courseDeck = { count: slides.length, show: show, current: function () { return current; } };
  show(fromHash());
})();
