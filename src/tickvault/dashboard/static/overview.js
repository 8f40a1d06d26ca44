// Overview: verify runs in the background; reload the page once it has finished.
(function poll() {
  "use strict";
  setTimeout(function () {
    fetch("api/overview").then(function (r) { return r.json(); }).then(function (d) {
      if (d.verify && !d.verify.running) { location.reload(); } else { poll(); }
    }).catch(function () { poll(); });
  }, 1500);
})();
