// Sign in and account access (user manual, "Sign In And Account Access"): log in, two-factor
// prompt, registration and email confirmation, password reset, and the recovery-key dialog
// after a reset. Passwords go from the form to the worker and nowhere else.

import { openDialog } from "../dialogs";
import { field, h, replace } from "../dom";
import { errorText } from "../rpc";
import type { App } from "./app";

export interface SignedIn {
  state: "unlocked" | "recovery_needed" | "two_factor" | "locked" | "signed_out";
  email?: string;
  needs_recovery?: boolean;
}

function input(name: string, type: string, autocomplete: string, extra: Record<string, string | boolean> = {}): HTMLInputElement {
  return h("input", { name, type, autocomplete, required: true, ...extra });
}

function card(title: string, ...children: (Node | string | null)[]): HTMLElement {
  return h("section", { class: "card auth" }, h("h1", { class: "brand" }, "SecurePACS"), h("h2", {}, title), ...children);
}

function messageBox(): HTMLParagraphElement {
  return h("p", { class: "message", role: "status", "aria-live": "polite" });
}

function show(box: HTMLElement, text: string, error = false): void {
  box.textContent = text;
  box.classList.toggle("error", error);
}

/** Run ``action`` with the form's button disabled; errors land in ``box``. */
async function busy(button: HTMLButtonElement, box: HTMLElement, action: () => Promise<void>): Promise<void> {
  button.disabled = true;
  show(box, "");
  try {
    await action();
  } catch (error) {
    show(box, errorText(error), true);
  } finally {
    button.disabled = false;
  }
}

/** A new password typed twice; ``differs`` says so in ``box`` when the two do not match. */
function newPassword(label: string): {
  password: HTMLInputElement;
  fields: HTMLLabelElement[];
  differs: (box: HTMLElement) => boolean;
} {
  const password = input("password", "password", "new-password", { minlength: "10" });
  const again = input("password2", "password", "new-password", { minlength: "10" });
  const differs = (box: HTMLElement): boolean => {
    if (password.value === again.value) return false;
    show(box, "The two passwords differ. Type the same password twice.", true);
    return true;
  };
  return { password, fields: [field(label, password), field(`Confirm ${label.toLowerCase()}`, again)], differs };
}

function link(label: string, onclick: () => void): HTMLAnchorElement {
  return h("a", { href: "#", class: "link", onclick: (event: Event) => { event.preventDefault(); onclick(); } }, label);
}

export function loginScreen(app: App, notice = ""): void {
  const email = input("email", "email", "username", { placeholder: "name@example.org" });
  email.value = app.prefs.get("email") ?? "";
  const password = input("password", "password", "current-password");
  const remember = h("input", { type: "checkbox", name: "remember" });
  remember.checked = app.prefs.get("email") !== null;
  const submit = h("button", { type: "submit", class: "primary" }, "Log in");
  const box = messageBox();
  if (notice) show(box, notice);
  const form = h(
    "form",
    { class: "stack", "aria-label": "Log in" },
    field("Email", email),
    field("Password", password),
    h("label", { class: "check" }, remember, "Remember me"),
    submit,
    box,
    h(
      "nav",
      { class: "links" },
      link("Forgot your password?", () => forgotScreen(app)),
      link("Register as a new user", () => registerScreen(app)),
      link("Resend email confirmation", () => resendScreen(app)),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(submit, box, async () => {
      show(box, "Signing in: deriving your keys…");
      const result = await app.runtime.call<SignedIn>("login", {
        email: email.value,
        password: password.value,
        remember: remember.checked,
      });
      if (remember.checked) app.prefs.set("email", email.value.trim());
      else app.prefs.remove("email");
      if (result.state === "two_factor") {
        twoFactorScreen(app, email.value, password.value, remember.checked);
        return;
      }
      await app.afterSignIn(result);
    });
  });
  replace(app.root, card("Log in", form));
  (email.value ? password : email).focus();
}

export function twoFactorScreen(app: App, email: string, password: string, remember: boolean): void {
  let useRecovery = false;
  const code = input("code", "text", "one-time-code", { inputmode: "numeric", pattern: "[0-9 ]{6,8}" });
  const label = h("span", {}, "Authenticator code");
  const submit = h("button", { type: "submit", class: "primary" }, "Verify");
  const box = messageBox();
  const toggle = link("Use a two-factor recovery code instead", () => {
    useRecovery = !useRecovery;
    label.textContent = useRecovery ? "Two-factor recovery code" : "Authenticator code";
    toggle.textContent = useRecovery ? "Use an authenticator code instead" : "Use a two-factor recovery code instead";
    code.removeAttribute("pattern");
    code.setAttribute("inputmode", useRecovery ? "text" : "numeric");
    code.value = "";
    code.focus();
  });
  const form = h(
    "form",
    { class: "stack", "aria-label": "Two-factor authentication" },
    h("p", {}, "Two-factor authentication is on for this account. Enter the code your authenticator app shows."),
    h("label", { class: "field" }, label, code),
    submit,
    box,
    h("nav", { class: "links" }, toggle, link("Back to Log in", () => loginScreen(app))),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(submit, box, async () => {
      const result = await app.runtime.call<SignedIn>("login", {
        email,
        password,
        remember,
        totp_code: useRecovery ? "" : code.value.replace(/\s/g, ""),
        recovery_code: useRecovery ? code.value : "",
      });
      if (result.state === "two_factor") throw new Error("Enter the code.");
      await app.afterSignIn(result);
    });
  });
  replace(app.root, card("Two-factor authentication", form));
  code.focus();
}

export function registerScreen(app: App): void {
  const email = input("email", "email", "username", { placeholder: "name@example.org" });
  const { password, fields, differs } = newPassword("Password");
  const submit = h("button", { type: "submit", class: "primary" }, "Register");
  const box = messageBox();
  const form = h(
    "form",
    { class: "stack", "aria-label": "Register" },
    field("Email", email),
    ...fields,
    h("p", { class: "hint" }, "Your password encrypts your keys on this device. SecurePACS never receives it and cannot reset your data without your recovery key."),
    submit,
    box,
    h("nav", { class: "links" }, link("Back to Log in", () => loginScreen(app))),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (differs(box)) return;
    void busy(submit, box, async () => {
      show(box, "Creating your keys…");
      await app.runtime.call("register", { email: email.value, password: password.value });
      replace(
        app.root,
        card(
          "Check your email",
          h("p", { "data-testid": "registered" }, `We sent a confirmation link to ${email.value.trim()}. Open it to confirm your email address, then log in.`),
          h("nav", { class: "links" }, link("Resend email confirmation", () => resendScreen(app)), link("Back to Log in", () => loginScreen(app))),
        ),
      );
    });
  });
  replace(app.root, card("Register as a new user", form));
  email.focus();
}

export function resendScreen(app: App): void {
  const email = input("email", "email", "username");
  const submit = h("button", { type: "submit", class: "primary" }, "Resend");
  const box = messageBox();
  const form = h("form", { class: "stack", "aria-label": "Resend email confirmation" }, field("Email", email), submit, box,
    h("nav", { class: "links" }, link("Back to Log in", () => loginScreen(app))));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(submit, box, async () => {
      await app.runtime.call("resend_confirmation", { email: email.value });
      show(box, "If this address has an unconfirmed account, a new confirmation link is on its way.");
    });
  });
  replace(app.root, card("Resend email confirmation", form));
  email.focus();
}

export async function confirmScreen(app: App, token: string): Promise<void> {
  const box = messageBox();
  replace(app.root, card("Confirm your email address", box));
  show(box, "Confirming…");
  try {
    await app.runtime.call("confirm", { token });
    history.replaceState(null, "", "/");
    loginScreen(app, "Your email address is confirmed. You can log in now.");
  } catch (error) {
    show(box, `${errorText(error)} Use Resend email confirmation to get a new link.`, true);
    app.root.querySelector(".card")?.appendChild(h("nav", { class: "links" }, link("Resend email confirmation", () => resendScreen(app)), link("Back to Log in", () => loginScreen(app))));
  }
}

export function forgotScreen(app: App): void {
  const email = input("email", "email", "username");
  const submit = h("button", { type: "submit", class: "primary" }, "Reset Password");
  const box = messageBox();
  const form = h(
    "form",
    { class: "stack", "aria-label": "Forgot your password?" },
    h("p", { class: "warning" }, "A password reset restores sign-in only. Your studies are encrypted: to open them again you will need your SecurePACS recovery key (or your last password). Keep it ready."),
    field("Email", email),
    submit,
    box,
    h("nav", { class: "links" }, link("Back to Log in", () => loginScreen(app))),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(submit, box, async () => {
      await app.runtime.call("forgot_password", { email: email.value });
      show(box, "If this address has an account, a password reset link is on its way. Check your email.");
    });
  });
  replace(app.root, card("Forgot your password?", form));
  email.focus();
}

export function resetScreen(app: App, token: string): void {
  const { password, fields, differs } = newPassword("New password");
  const submit = h("button", { type: "submit", class: "primary" }, "Set new password");
  const box = messageBox();
  const form = h(
    "form",
    { class: "stack", "aria-label": "Set a new password" },
    ...fields,
    h("p", { class: "warning" }, "After the reset, SecurePACS asks for your recovery key before your studies open again."),
    submit,
    box,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (differs(box)) return;
    void busy(submit, box, async () => {
      await app.runtime.call("reset_password", { token, password: password.value });
      history.replaceState(null, "", "/");
      loginScreen(app, "Your password is reset. Log in with the new password; then load your recovery key.");
    });
  });
  replace(app.root, card("Set a new password", form));
  password.focus();
}

/** A live server session whose keys are not in this tab (a reload, Remember me). */
export function unlockScreen(app: App, email: string): void {
  const password = input("password", "password", "current-password");
  const submit = h("button", { type: "submit", class: "primary" }, "Unlock");
  const box = messageBox();
  const form = h(
    "form",
    { class: "stack", "aria-label": "Unlock" },
    h("p", {}, `Signed in as ${email}. Your keys are not kept across page loads: enter your password to unlock your studies.`),
    field("Password", password),
    submit,
    box,
    h("nav", { class: "links" }, link("Log in as someone else", () => void app.logout())),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(submit, box, async () => {
      await app.afterSignIn(await app.runtime.call<SignedIn>("unlock", { password: password.value }));
    });
  });
  replace(app.root, card("Unlock SecurePACS", form));
  password.focus();
}

/** "Please enter the Recovery Key": after a password reset, before studies open again. */
export async function recoveryDialog(app: App): Promise<boolean> {
  const fileInput = h("input", { type: "file", accept: ".txt,text/plain", name: "key-file", "data-testid": "recovery-key-file" });
  const text = h("textarea", { name: "key-text", rows: "3", placeholder: "XXXXXXXX-XXXXXXXX-…", "data-testid": "recovery-key-text" });
  const oldPassword = h("input", { type: "password", name: "old-password", autocomplete: "off" });
  const box = messageBox();
  for (;;) {
    const choice = await openDialog(
      "Please enter the Recovery Key",
      [
        h("p", {}, "Your data is encrypted, and your password was reset. Only your SecurePACS recovery key (or your last usable password) can restore access to your studies. It is different from two-factor recovery codes."),
        h("label", { class: "field" }, h("span", {}, "Load Recovery Key from file"), fileInput),
        h("label", { class: "field" }, h("span", {}, "or paste the recovery key"), text),
        h("label", { class: "field" }, h("span", {}, "or enter your last usable password"), oldPassword),
        box,
      ],
      [
        { label: "Cancel", value: "cancel" },
        { label: "Load Recovery Key", value: "load", primary: true },
      ],
      { testId: "recovery-dialog" },
    );
    if (choice !== "load") return false;
    try {
      const file = fileInput.files?.[0];
      await app.runtime.call("recover", {
        key_file: file ? await file.text() : "",
        key_text: text.value,
        old_password: oldPassword.value,
      });
      return true;
    } catch (error) {
      show(box, errorText(error), true);
    }
  }
}
