// Passkey forms (form[data-passkey]): the button asks the options endpoint for a ceremony,
// hands its options to the authenticator (navigator.credentials.create or get), and submits
// the form with the ceremony token and the authenticator's answer as JSON (binary values
// base64url, as the server's webauthn-rs reads them). Forms stay hidden without WebAuthn.
(() => {
  "use strict";

  const toBytes = (text) => {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
  };

  const toText = (buffer) => {
    let bin = "";
    for (const b of new Uint8Array(buffer)) {
      bin += String.fromCharCode(b);
    }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };

  const field = (form, name) => form.elements.namedItem(name);

  async function options(form) {
    const body = new URLSearchParams();
    for (const name of ["csrf", "request", "step", "register"]) {
      const f = field(form, name);
      if (f) {
        body.set(name, f.value);
      }
    }
    const response = await fetch(form.dataset.options, {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (!response.ok) {
      throw new Error("options " + response.status);
    }
    return response.json();
  }

  async function register(publicKey) {
    publicKey.challenge = toBytes(publicKey.challenge);
    publicKey.user.id = toBytes(publicKey.user.id);
    for (const c of publicKey.excludeCredentials || []) {
      c.id = toBytes(c.id);
    }
    const cred = await navigator.credentials.create({ publicKey });
    const r = cred.response;
    return {
      id: cred.id,
      rawId: toText(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: toText(r.attestationObject),
        clientDataJSON: toText(r.clientDataJSON),
        transports: r.getTransports ? r.getTransports() : undefined,
      },
      extensions: {},
    };
  }

  async function assert(publicKey) {
    publicKey.challenge = toBytes(publicKey.challenge);
    for (const c of publicKey.allowCredentials || []) {
      c.id = toBytes(c.id);
    }
    const cred = await navigator.credentials.get({ publicKey });
    const r = cred.response;
    return {
      id: cred.id,
      rawId: toText(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: toText(r.authenticatorData),
        clientDataJSON: toText(r.clientDataJSON),
        signature: toText(r.signature),
        userHandle: r.userHandle ? toText(r.userHandle) : null,
      },
      extensions: {},
    };
  }

  async function run(form) {
    const { ceremony, publicKey } = await options(form);
    const answer =
      form.dataset.passkey === "register"
        ? await register(publicKey)
        : await assert(publicKey);
    field(form, "ceremony").value = ceremony;
    field(form, "credential").value = JSON.stringify(answer);
    form.submit();
  }

  const start = () => {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      return;
    }
    for (const form of document.querySelectorAll("form[data-passkey]")) {
      const button = form.querySelector("[data-passkey-start]");
      const status = form.querySelector("[data-passkey-status]");
      if (!button || form.dataset.ready) {
        continue;
      }
      form.dataset.ready = "1";
      form.hidden = false;
      button.addEventListener("click", () => {
        button.disabled = true;
        if (status) {
          status.textContent = "";
        }
        run(form).catch(() => {
          button.disabled = false;
          if (status) {
            status.className = "error";
            status.textContent = "The passkey was not used. Try again, or use another way.";
          }
        });
      });
    }
  };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
