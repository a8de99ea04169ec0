// Modal dialogs: one at a time over the page, each with its own buttons. <dialog> gives focus
// trapping and Escape for free; closing resolves the promise with the button that was chosen.

import { h } from "./dom";

export interface DialogButton {
  label: string;
  value: string;
  primary?: boolean;
  danger?: boolean;
}

export function openDialog(
  title: string,
  body: (Node | string)[],
  buttons: DialogButton[],
  options: { testId?: string; onOpen?: (dialog: HTMLDialogElement) => void; dismissable?: boolean } = {},
): Promise<string> {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "dialog", "data-testid": options.testId ?? "dialog", "aria-label": title });
    const footer = h("div", { class: "dialog-buttons" });
    for (const button of buttons) {
      const cls = button.primary ? "primary" : button.danger ? "danger" : "";
      footer.appendChild(
        h("button", { type: "button", class: cls, onclick: () => close(button.value) }, button.label),
      );
    }
    dialog.append(h("h2", {}, title), h("div", { class: "dialog-body" }, ...body), footer);
    const close = (value: string): void => {
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      if (options.dismissable !== false) close("cancel");
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    options.onOpen?.(dialog);
  });
}

export function confirmDialog(title: string, text: string, confirm: string, danger = false): Promise<boolean> {
  return openDialog(title, [h("p", {}, text)], [
    { label: "Cancel", value: "cancel" },
    { label: confirm, value: "ok", primary: !danger, danger },
  ]).then((value) => value === "ok");
}

let shownSessionDialog = false;

/** The manual's unauthorized/expired-session dialog: reload, then sign in again. */
export async function expiredSessionDialog(uploading: boolean): Promise<void> {
  if (shownSessionDialog) return;
  shownSessionDialog = true;
  const text = uploading
    ? "Your session has expired while an upload was running. Sign in again, then restart the upload: studies that finished uploading are not sent again."
    : "Your session has expired or was ended from another window. Sign in again to continue.";
  await openDialog("Session expired", [h("p", {}, text)], [{ label: "Sign in again", value: "reload", primary: true }], {
    testId: "expired-session-dialog",
    dismissable: false,
  });
  window.location.assign("/");
}

/** The manual's network-error dialog: the request can be retried or the page reloaded. */
export async function networkErrorDialog(uploading: boolean): Promise<"retry" | "reload"> {
  const text = uploading
    ? "SecurePACS cannot reach the server. The upload keeps retrying; keep this tab open. Reload only if it does not recover."
    : "SecurePACS cannot reach the server. Check your network connection, then try again.";
  const value = await openDialog("Network error", [h("p", {}, text)], [
    { label: "Reload", value: "reload" },
    { label: "Try again", value: "retry", primary: true },
  ], { testId: "network-error-dialog" });
  if (value === "reload") window.location.reload();
  return value === "reload" ? "reload" : "retry";
}

/** The manual's session warning: the session ends soon; reload and sign in again if asked. */
export async function sessionWarningDialog(minutes: number, uploading: boolean): Promise<void> {
  const text = `Your session ends in about ${minutes} minute${minutes === 1 ? "" : "s"}. ` +
    (uploading ? "An upload is running: wait for it to finish if possible, then reload and sign in again." : "Reload and sign in again to continue working.");
  const value = await openDialog("Session warning", [h("p", {}, text)], [
    { label: "Later", value: "later" },
    { label: "Reload", value: "reload", primary: true },
  ], { testId: "session-warning-dialog" });
  if (value === "reload") window.location.reload();
}
