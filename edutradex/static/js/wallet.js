// Wallet page: quick amounts, live refresh, and the card payment with Stripe.js
// (the real one, or localstripe's stand-in in tests: the same calls work with both).
(function () {
  "use strict";

  var body = document.body;
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");

  function refreshPanels() { if (window.htmx) window.htmx.trigger(body, "wallet-changed"); }

  body.addEventListener("click", function (evt) {
    var quick = evt.target.closest("[data-fill-amount]");
    if (!quick) return;
    var input = document.querySelector(quick.getAttribute("data-target"));
    if (input) { input.value = quick.getAttribute("data-fill-amount"); input.focus(); }
  });

  body.addEventListener("htmx:afterRequest", function (evt) {
    var form = evt.detail.elt;
    if (evt.detail.successful && form.classList && form.classList.contains("wallet-amount-form")) form.reset();
  });

  body.addEventListener("wallet-toast", function (evt) {
    if (evt.detail && evt.detail.value) window.EduTradeX.toast(evt.detail.value, "success");
  });

  // The server emits "wallet" to this user's room after every committed balance change
  // (e.g. the webhook crediting a deposit): refresh the panels.
  if (window.EduTradeX && window.EduTradeX.socket) {
    window.EduTradeX.socket.on("wallet", refreshPanels);
  }

  function setBusy(button, busy) {
    button.disabled = busy;
    button.classList.toggle("htmx-request", busy);
  }

  function showStatus(box, url) {
    window.htmx.ajax("GET", url, { target: box, swap: "outerHTML" });
  }

  function mountCheckout(box) {
    if (box.getAttribute("data-mounted") || typeof window.Stripe !== "function") {
      if (typeof window.Stripe !== "function") {
        box.querySelector("[data-card-error]").textContent = "The card form could not load. Check your connection and reload the page.";
      }
      return;
    }
    box.setAttribute("data-mounted", "1");
    var stripe = window.Stripe(box.getAttribute("data-publishable-key"));
    var card = stripe.elements().create("card", { hidePostalCode: true });
    card.mount(box.querySelector("[data-card-element]"));
    var errorBox = box.querySelector("[data-card-error]");
    var button = box.querySelector("[data-pay-button]");

    function fail(message) {
      errorBox.textContent = message;
      window.EduTradeX.toast(message, "error");
      setBusy(button, false);
    }

    button.addEventListener("click", function () {
      errorBox.textContent = "";
      setBusy(button, true);
      stripe.createToken(card).then(function (result) {
        if (result.error || !result.token) {
          fail((result.error && result.error.message) || "Check the card details and try again.");
          return null;
        }
        return fetch(box.getAttribute("data-pay-url"), {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf },
          body: JSON.stringify({ token: result.token.id })
        }).then(function (response) {
          return response.json().then(function (data) { return { ok: response.ok, data: data }; });
        });
      }).then(function (reply) {
        if (!reply) return;
        if (!reply.ok) {
          fail(reply.data.error || "The payment did not go through.");
          refreshPanels();
          return;
        }
        if (reply.data.status === "requires_action") {
          return stripe.confirmCardPayment(reply.data.client_secret).then(function (result) {
            if (result.error) fail(result.error.message || "Card authentication failed.");
            else showStatus(box, reply.data.status_url);
          });
        }
        showStatus(box, reply.data.status_url);
      }).catch(function () {
        fail("Cannot reach the server. Check your connection and try again.");
      });
    });
  }

  function mountAll(root) {
    (root || document).querySelectorAll("[data-stripe-checkout]").forEach(mountCheckout);
  }

  body.addEventListener("htmx:afterSwap", function (evt) { mountAll(evt.detail.target); });
  mountAll(document);
})();
