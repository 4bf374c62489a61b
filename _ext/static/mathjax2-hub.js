// The Jupyter widget manager typesets widget labels with MathJax 2's MathJax.Hub.Queue;
// this site runs MathJax 3, which has no Hub. Map the one call it makes onto MathJax 3.
(function () {
  function install() {
    if (!window.MathJax || window.MathJax.Hub) return;
    window.MathJax.Hub = {
      Queue: function () {
        var calls = Array.prototype.slice.call(arguments);
        var ready = (MathJax.startup && MathJax.startup.promise) || Promise.resolve();
        ready.then(function () {
          calls.forEach(function (call) {
            if (Array.isArray(call) && call[0] === "Typeset" && call[2] && MathJax.typesetPromise) {
              MathJax.typesetPromise([call[2]]);
            }
          });
        });
      }
    };
  }
  install();
  document.addEventListener("DOMContentLoaded", install);
})();
