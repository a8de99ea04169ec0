// My Account (user manual, "My Account" and "First account initialization"): info, statistics,
// key fingerprint, recovery-key status by Key UID, password change, two-factor, sessions.

import QRCode from "qrcode";

import { confirmDialog, openDialog } from "../dialogs";
import { field, formatBytes, h, replace, saveFile } from "../dom";
import { errorText } from "../rpc";
import type { App } from "./app";

interface SessionRow {
  id: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  remember: boolean;
  current: boolean;
  ip_address: string;
  user_agent: string;
}

export interface AccountView {
  email: string;
  member_since: string;
  account_type: string;
  studies: number;
  files: number;
  used_bytes: number;
  limit_bytes: number;
  recovery_key_uids: string[];
  two_factor_enabled: boolean;
  fingerprint: string;
  shared_studies: number;
  received_studies: number;
  notify_shares: boolean;
  sessions: SessionRow[];
}

interface NewRecoveryKey {
  key_uid: string;
  text: string;
  file: string;
  file_name: string;
}

/** "Email me on studies shared with me", saved as soon as it changes. */
function notifications(app: App, on: boolean): HTMLElement {
  const box = h("input", { type: "checkbox", name: "notify_shares", checked: on });
  const saved = h("span", { class: "hint", "aria-live": "polite", "data-testid": "notifications-saved" });
  box.addEventListener("change", () => {
    box.disabled = true;
    app.runtime.call("set_notifications", { shared_with_me: box.checked }).then(
      () => (saved.textContent = "Saved."),
      (error: unknown) => {
        box.checked = !box.checked;
        saved.textContent = errorText(error);
      },
    ).finally(() => (box.disabled = false));
  });
  return h("div", {}, h("label", { class: "check" }, box, " Email me on studies shared with me"), " ", saved);
}

/**
 * Trust a changed key by email and the fingerprint compared with its owner (ZK-4), for any
 * warning that names a person: a study's owner as well as its sender.
 */
function trustForm(app: App): HTMLElement {
  const email = h("input", { type: "email", name: "trust_email", autocomplete: "off" });
  const fingerprint = h("input", { name: "trust_fingerprint", autocomplete: "off", inputmode: "numeric", placeholder: "00000 00000 00000 00000 00000 00000 00000 00000" });
  const trust = h("button", { type: "submit" }, "Trust the new key");
  const note = h("p", { class: "message", "aria-live": "polite", "data-testid": "trust-status" });
  const form = h(
    "form",
    { "aria-label": "Trust a changed key" },
    h("p", { class: "hint" }, "When SecurePACS warns that someone's key changed, compare the new fingerprint with them in person or by phone. If it matches, enter their email and that fingerprint."),
    field("Their email", email),
    field("Fingerprint you compared", fingerprint),
    trust,
    note,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    trust.disabled = true;
    note.classList.remove("error");
    app.runtime
      .call<string>("accept_fingerprint", { email: email.value.trim(), fingerprint: fingerprint.value })
      .then(
        (now) => {
          note.textContent = `The key of ${email.value.trim().toLowerCase()} (${now}) is trusted in this browser.`;
          form.reset();
        },
        (error: unknown) => {
          note.textContent = errorText(error);
          note.classList.add("error");
        },
      )
      .finally(() => (trust.disabled = false));
  });
  return form;
}

function when(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** Generate a recovery key, make the person download it and confirm it is stored. */
export async function recoveryKeyDialog(app: App, replace_: boolean, first: boolean): Promise<boolean> {
  const intro = first
    ? "Before you upload, share or view studies, create your recovery key. It is the only way to restore access to your encrypted studies if you forget your password."
    : replace_
      ? "A new recovery key replaces every earlier one: old key files stop working."
      : "A new recovery key is added next to the ones you have.";
  const start = await openDialog(
    "Recovery key generation",
    [
      h("p", {}, intro),
      h("p", { class: "warning" }, "The key is shown once. Download the key file and store it somewhere private before you close this dialog. Never send it in a support ticket, email, chat or screenshot."),
    ],
    [
      { label: "Cancel", value: "cancel" },
      { label: "Generate Key", value: "generate", primary: true },
    ],
    { testId: "recovery-generate-dialog" },
  );
  if (start !== "generate") return false;
  const key = await app.runtime.call<NewRecoveryKey>("create_recovery_key", { replace: replace_ });
  let downloaded = false;
  const stored = h("input", { type: "checkbox", name: "stored" });
  const done = h("button", { type: "button", class: "primary", disabled: true }, "Done");
  const update = (): void => {
    done.disabled = !(downloaded && stored.checked);
  };
  stored.addEventListener("change", update);
  await new Promise<void>((resolve) => {
    const dialog = h(
      "dialog",
      { class: "dialog", "data-testid": "recovery-key-dialog", "aria-label": "Your recovery key" },
      h("h2", {}, "Your recovery key"),
      h("p", {}, `Key UID: ${key.key_uid}`),
      h("pre", { class: "recovery-text", "data-testid": "recovery-key-text-shown" }, key.text),
      h(
        "button",
        {
          type: "button",
          onclick: () => {
            saveFile(key.file_name, key.file);
            downloaded = true;
            update();
          },
        },
        "Download key file",
      ),
      h("label", { class: "check" }, stored, "I have stored my recovery key somewhere private"),
      h("div", { class: "dialog-buttons" }, done),
    );
    dialog.addEventListener("cancel", (event) => event.preventDefault());
    done.addEventListener("click", () => {
      dialog.close();
      dialog.remove();
      resolve();
    });
    document.body.appendChild(dialog);
    dialog.showModal();
  });
  return true;
}

/** First account initialization: an account without a recovery key creates one first. */
export async function initializationDialog(app: App): Promise<void> {
  const account = await app.runtime.call<AccountView>("account");
  if (account.recovery_key_uids.length > 0) return;
  while (!(await recoveryKeyDialog(app, false, true))) {
    const again = await confirmDialog(
      "Account initialization",
      "Without a recovery key, a forgotten password means your studies are lost for good. Create it now?",
      "Create it now",
    );
    if (!again) return;
  }
}

function section(title: string, ...children: (Node | string | null)[]): HTMLElement {
  return h("section", { class: title === "Sessions" ? "panel wide" : "panel" }, h("h3", {}, title), ...children);
}

function row(label: string, value: string, testId = ""): HTMLElement {
  return h("div", { class: "kv" }, h("span", {}, label), h("strong", testId ? { "data-testid": testId } : {}, value));
}

async function twoFactorEnable(app: App, refresh: () => void): Promise<void> {
  const { secret, otpauth_uri } = await app.runtime.call<{ secret: string; otpauth_uri: string }>("start_two_factor");
  const canvas = h("canvas", { "data-testid": "totp-qr", "aria-label": "QR code for your authenticator app" });
  await QRCode.toCanvas(canvas, otpauth_uri, { margin: 2, width: 200 });
  const code = h("input", { name: "code", inputmode: "numeric", autocomplete: "one-time-code" });
  const box = h("p", { class: "message error" });
  for (;;) {
    const choice = await openDialog(
      "Turn on two-factor authentication",
      [
        h("p", {}, "Scan the QR code with your authenticator app, or type the secret into it. Then enter the code it shows."),
        canvas,
        h("p", {}, "Secret: ", h("code", { "data-testid": "totp-secret" }, secret)),
        field("Authenticator code", code),
        box,
      ],
      [
        { label: "Cancel", value: "cancel" },
        { label: "Turn on", value: "ok", primary: true },
      ],
      { testId: "two-factor-dialog" },
    );
    if (choice !== "ok") return;
    try {
      const codes = await app.runtime.call<string[]>("confirm_two_factor", { code: code.value });
      await openDialog(
        "Two-factor recovery codes",
        [
          h("p", {}, "Each code signs you in once if you lose your authenticator. Save them now: they are not shown again. They are not your SecurePACS recovery key."),
          h("pre", { class: "recovery-text", "data-testid": "two-factor-codes" }, codes.join("\n")),
          h("button", { type: "button", onclick: () => saveFile("securepacs-two-factor-recovery-codes.txt", `${codes.join("\n")}\n`) }, "Download codes"),
        ],
        [{ label: "Done", value: "done", primary: true }],
        { testId: "two-factor-codes-dialog", dismissable: false },
      );
      refresh();
      return;
    } catch (error) {
      box.textContent = errorText(error);
    }
  }
}

async function twoFactorDisable(app: App, refresh: () => void): Promise<void> {
  const code = h("input", { name: "code", autocomplete: "one-time-code" });
  const box = h("p", { class: "message error" });
  for (;;) {
    const choice = await openDialog(
      "Turn off two-factor authentication",
      [field("Authenticator code or two-factor recovery code", code), box],
      [
        { label: "Cancel", value: "cancel" },
        { label: "Turn off", value: "ok", danger: true },
      ],
    );
    if (choice !== "ok") return;
    try {
      await app.runtime.call("disable_two_factor", { code: code.value });
      refresh();
      return;
    } catch (error) {
      box.textContent = errorText(error);
    }
  }
}

function passwordForm(app: App): HTMLElement {
  const old = h("input", { type: "password", name: "current-password", autocomplete: "current-password", required: true });
  const fresh = h("input", { type: "password", name: "new-password", autocomplete: "new-password", minlength: "10", required: true });
  const again = h("input", { type: "password", name: "new-password-2", autocomplete: "new-password", minlength: "10", required: true });
  const submit = h("button", { type: "submit" }, "Change password");
  const box = h("p", { class: "message", role: "status" });
  const form = h("form", { class: "stack", "aria-label": "Change password" }, field("Current password", old), field("New password", fresh), field("Confirm new password", again), submit, box);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    box.classList.remove("error");
    if (fresh.value !== again.value) {
      box.textContent = "The two new passwords differ.";
      box.classList.add("error");
      return;
    }
    submit.disabled = true;
    box.textContent = "Re-encrypting your keys…";
    app.runtime
      .call("change_password", { old: old.value, new: fresh.value })
      .then(() => {
        box.textContent = "Password changed. Your other sessions were signed out.";
        form.reset();
      })
      .catch((error: unknown) => {
        box.textContent = errorText(error);
        box.classList.add("error");
      })
      .finally(() => {
        submit.disabled = false;
      });
  });
  return form;
}

export function accountTab(app: App, container: HTMLElement): void {
  const refresh = (): void => accountTab(app, container);
  replace(container, h("p", { class: "hint" }, "Loading your account…"));
  app.runtime
    .call<AccountView>("account")
    .then((account) => {
      const percent = account.limit_bytes ? Math.min(100, (100 * account.used_bytes) / account.limit_bytes) : 0;
      const meter = h("meter", { min: "0", max: "100", value: percent.toFixed(1), "aria-label": "Used storage" });
      const recovery = account.recovery_key_uids.length
        ? h("ul", { "data-testid": "recovery-key-uids" }, ...account.recovery_key_uids.map((uid) => h("li", {}, `Key UID ${uid}`)))
        : h("p", { class: "warning", "data-testid": "recovery-key-uids" }, "No recovery key is available. Create one now.");
      const sessions = h(
        "table",
        { class: "table", "data-testid": "sessions" },
        h("thead", {}, h("tr", {}, ...["Signed in", "Last seen", "Expires", "IP address", "Browser", ""].map((t) => h("th", {}, t)))),
        h(
          "tbody",
          {},
          ...account.sessions.map((s) =>
            h(
              "tr",
              {},
              h("td", {}, when(s.created_at)),
              h("td", {}, when(s.last_seen_at)),
              h("td", {}, when(s.expires_at)),
              h("td", {}, s.ip_address),
              h("td", { class: "ellipsis", title: s.user_agent }, s.user_agent),
              h(
                "td",
                {},
                s.current
                  ? "This session"
                  : h(
                      "button",
                      {
                        type: "button",
                        onclick: () => void app.runtime.call("revoke_session", { session_id: s.id }).then(refresh),
                      },
                      "Revoke",
                    ),
              ),
            ),
          ),
        ),
      );
      replace(
        container,
        h(
          "div",
          { class: "account" },
          section("Info", row("Email", account.email), row("Member since", new Date(account.member_since).toLocaleDateString(), "member-since"), row("Account type", account.account_type, "account-type")),
          section(
            "Statistics",
            row("Studies", String(account.studies), "stat-studies"),
            row("Files", String(account.files), "stat-files"),
            row("Shared studies", String(account.shared_studies), "stat-shared"),
            row("Received studies", String(account.received_studies), "stat-received"),
            row("Used storage", `${formatBytes(account.used_bytes)} of ${formatBytes(account.limit_bytes)}`, "stat-storage"),
            meter,
          ),
          section(
            "Recovery key",
            h("p", {}, "Key material is never shown here, only each key's Key UID."),
            recovery,
            h(
              "div",
              { class: "actions" },
              h("button", { type: "button", onclick: () => void recoveryKeyDialog(app, false, false).then(refresh) }, "Create new recovery key"),
              h(
                "button",
                {
                  type: "button",
                  class: "danger",
                  disabled: account.recovery_key_uids.length === 0,
                  onclick: () =>
                    void confirmDialog("Invalidate all recovery keys", "Every recovery key of this account stops working. Create a new one right after, or a forgotten password will lock your studies for good.", "Invalidate all", true).then(
                      (yes) => (yes ? app.runtime.call("invalidate_recovery_keys").then(refresh) : undefined),
                    ),
                },
                "Invalidate all recovery keys",
              ),
            ),
          ),
          section("Encryption key fingerprint", h("p", {}, "People who share studies with you can compare this with what their SecurePACS shows."), h("code", { "data-testid": "fingerprint" }, account.fingerprint), trustForm(app)),
          section("Notifications", notifications(app, account.notify_shares)),
          section("Change password", passwordForm(app)),
          section(
            "Two-factor authentication",
            h("p", { "data-testid": "two-factor-state" }, account.two_factor_enabled ? "Two-factor authentication is on." : "Two-factor authentication is off."),
            account.two_factor_enabled
              ? h("button", { type: "button", onclick: () => void twoFactorDisable(app, refresh) }, "Turn off two-factor")
              : h("button", { type: "button", onclick: () => void twoFactorEnable(app, refresh) }, "Turn on two-factor"),
          ),
          section("Sessions", sessions),
        ),
      );
    })
    .catch((error: unknown) => replace(container, h("p", { class: "message error" }, errorText(error))));
}
