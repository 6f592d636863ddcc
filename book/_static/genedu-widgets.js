// The Jupyter widget manager typesets labels with MathJax 2 (MathJax.Hub.Queue); the book
// loads MathJax 3. Before the widget manager renders (both run on window "load", this one
// first), give MathJax 3 a Hub.Queue that forwards to typesetPromise.
window.addEventListener("load", function () {
  if (window.MathJax && !window.MathJax.Hub) {
    window.MathJax.Hub = {
      Queue: function (job) {
        if (window.MathJax.typesetPromise && job && job[2]) window.MathJax.typesetPromise([job[2]]);
      },
    };
  }
});
