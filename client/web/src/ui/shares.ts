// Manage Shares (user manual, "Share Studies"): the study's shares and links on the left, the
// selected one's Edit Record panel on the right, New Share and Create anonymous link. Every
// share is sealed in the worker: the page sends what the person typed and gets back rows,
// fingerprints to compare, and a new link's URL exactly once.

import { confirmDialog, openDialog } from "../dialogs";
import { field, h, replace } from "../dom";
import { errorText } from "../rpc";
import type { App } from "./app";
import type { StudyRow } from "./studies";
import { describe } from "./windows";

interface ShareItem {
  share_id: string;
  recipient_email: string;
  pending: boolean;
  permission: string;
  expires_at: number;
  created_at: number;
  created_by: string;
}

interface LinkItem {
  link_id: string;
  permission: string;
  expires_at: number;
  created_at: number;
  created_by: string;
}

interface Listing {
  shares: ShareItem[];
  links: LinkItem[];
}

interface Recipient {
  exists: boolean;
  fingerprint: string;
  seen: string;
  warning: string;
}

// ZK-5: what each permission does, and that it is the server that enforces it.
export const PERMISSIONS: [string, string, string][] = [
  ["view", "View", "Recipient can inspect the study in the viewer. Anyone who can view a study can copy what they see."],
  ["download", "Download", "Recipient can also download the study as a zip. Enforced by the server."],
  ["edit", "Edit", "Recipient can also change study details such as the description. Enforced by the server."],
  ["admin", "Admin", "Recipient can also manage who the study is shared with. Use only for trusted people."],
];

const TIP =
  "Tip: to share with someone who has no SecurePACS account, enter your own email address. SecurePACS then creates an anonymous shareable link. Pass it on through a secure channel only.";

/**
 * "Trust the new key", for a person whose key fingerprint changed (ZK-4): to be used only
 * after comparing the new fingerprint with them. `done` hears the outcome to show.
 */
export function trustNewKey(app: App, email: string, fingerprint: string, done: (text: string, failed: boolean) => void): HTMLButtonElement {
  const button = h("button", { type: "button", "data-testid": "trust-new-key" }, "Trust the new key");
  button.addEventListener("click", () => {
    void confirmDialog(
      "Trust the new key",
      `Trust ${fingerprint} as the key of ${email} only if you compared it with them in person or by phone and it matched. If it did not, the server may be standing in for them: share nothing with them and tell them.`,
      "I compared it: trust it",
    ).then(async (yes) => {
      if (!yes) return;
      button.disabled = true;
      try {
        const now = await app.runtime.call<string>("accept_fingerprint", { email, fingerprint });
        done(`The new key of ${email} (${now}) is trusted in this browser.`, false);
      } catch (error) {
        button.disabled = false;
        done(errorText(error), true);
      }
    });
  });
  return button;
}

function label(permission: string): string {
  return PERMISSIONS.find(([value]) => value === permission)?.[1] ?? permission;
}

/** The date input's value for an expiry (the last day of access), or "" for none. */
function dayOf(expiresAt: number): string {
  return expiresAt === 0 ? "" : new Date((expiresAt - 1) * 1000).toISOString().slice(0, 10);
}

function when(seconds: number): string {
  return seconds === 0 ? "Never" : new Date(seconds * 1000).toLocaleString();
}

function permissionSelect(value = "view", links = false): HTMLSelectElement {
  // Nobody signs in through a link, so a link allows View or Download only.
  const choices = links ? PERMISSIONS.slice(0, 2) : PERMISSIONS;
  const select = h("select", { name: "permission" }, ...choices.map(([v, l]) => h("option", { value: v }, l)));
  select.value = value;
  return select;
}

function permissionHint(select: HTMLSelectElement): HTMLElement {
  const hint = h("p", { class: "hint", "data-testid": "permission-hint" });
  const update = (): void => {
    hint.textContent = PERMISSIONS.find(([v]) => v === select.value)?.[2] ?? "";
  };
  select.addEventListener("change", update);
  update();
  return hint;
}

function dateInput(value = ""): HTMLInputElement {
  const input = h("input", { type: "date", name: "expires" });
  input.min = new Date().toISOString().slice(0, 10);
  input.value = value;
  return input;
}

/** The URL of a new link, shown once with a copy button. */
function linkShown(url: string): HTMLElement {
  const box = h("input", { type: "text", readonly: true, value: url, "data-testid": "link-url", "aria-label": "Anonymous link" });
  box.value = url;
  const copied = h("span", { class: "hint", "aria-live": "polite" });
  const copy = h("button", { type: "button", class: "primary" }, "Copy link");
  copy.addEventListener("click", () => {
    box.select();
    navigator.clipboard.writeText(url).then(
      () => (copied.textContent = "Copied."),
      () => (copied.textContent = "Select the link and copy it (Ctrl+C)."),
    );
  });
  return h(
    "div",
    { class: "link-once", "data-testid": "link-created" },
    h("p", {}, "Anonymous link created. It is shown only this once: copy it now and pass it on through a secure channel. Anyone who has it can open the study until it expires or you delete it."),
    box,
    h("div", { class: "actions" }, copy, copied),
  );
}

export async function manageShares(app: App, row: StudyRow): Promise<void> {
  const status = h("p", { class: "message", role: "status", "data-testid": "shares-status" });
  const list = h("div", { class: "share-list", role: "grid", "data-testid": "share-list" });
  const panel = h("div", { class: "share-panel", "data-testid": "share-panel" });
  let listing: Listing = { shares: [], links: [] };
  let selected: string | null = null;

  const say = (text: string, error = false): void => {
    status.textContent = text;
    status.classList.toggle("error", error);
  };

  async function reload(): Promise<void> {
    try {
      listing = await app.runtime.call<Listing>("shares", { study_id: row.study_id });
    } catch (error) {
      say(errorText(error), true);
      return;
    }
    render();
  }

  function render(): void {
    const head = h(
      "div",
      { class: "share-row share-head", role: "row" },
      ...["Recipient", "Permission", "Expires", "Created", "Created by"].map((text) => h("span", { role: "columnheader" }, text)),
    );
    const rows: HTMLElement[] = [];
    for (const share of listing.shares) {
      rows.push(
        line(share.share_id, [
          share.recipient_email + (share.pending ? " (pending)" : ""),
          label(share.permission),
          when(share.expires_at),
          when(share.created_at),
          share.created_by,
        ], () => editShare(share)),
      );
    }
    for (const link of listing.links) {
      rows.push(
        line(link.link_id, ["Anonymous link", label(link.permission), when(link.expires_at), when(link.created_at), link.created_by], () => editLink(link)),
      );
    }
    replace(list, head, ...(rows.length ? rows : [h("p", { class: "hint" }, "This study is not shared yet.")]));
  }

  function line(id: string, cells: string[], open: () => void): HTMLElement {
    const element = h(
      "div",
      { class: id === selected ? "share-row selected" : "share-row", role: "row", tabindex: "0", "data-testid": "share-row" },
      ...cells.map((text) => h("span", { role: "gridcell", title: text }, text)),
    );
    const choose = (): void => {
      selected = id;
      for (const other of list.querySelectorAll(".share-row")) other.classList.toggle("selected", other === element);
      open();
    };
    element.addEventListener("click", choose);
    element.addEventListener("keydown", (event) => {
      if (event.key === "Enter") choose();
    });
    return element;
  }

  function editShare(share: ShareItem): void {
    const permission = permissionSelect(share.permission);
    const expires = dateInput(dayOf(share.expires_at));
    const save = h("button", { type: "button", class: "primary" }, "Save");
    const remove = h("button", { type: "button", class: "danger" }, "Delete");
    save.addEventListener("click", () => {
      void act(async () => {
        await app.runtime.call("update_share", {
          study_id: row.study_id,
          share_id: share.share_id,
          permission: permission.value,
          expires: expires.value,
        });
        say(`The share with ${share.recipient_email} was updated.`);
      });
    });
    remove.addEventListener("click", () => {
      void act(async () => {
        await app.runtime.call("delete_share", { share_id: share.share_id });
        selected = null;
        replace(panel);
        say(`The share with ${share.recipient_email} was deleted: their access ended now.`);
      });
    });
    replace(
      panel,
      h("h3", {}, "Edit Record"),
      h("p", {}, share.recipient_email + (share.pending ? " has no account yet: the share completes when they register and you next open SecurePACS." : "")),
      field("Expiration date", expires),
      field("Permission type", permission),
      permissionHint(permission),
      h("div", { class: "actions" }, save, remove),
    );
  }

  function editLink(link: LinkItem): void {
    const remove = h("button", { type: "button", class: "danger" }, "Delete");
    remove.addEventListener("click", () => {
      void act(async () => {
        await app.runtime.call("delete_share", { share_id: link.link_id });
        selected = null;
        replace(panel);
        say("The anonymous link was deleted: it no longer opens the study.");
      });
    });
    replace(
      panel,
      h("h3", {}, "Edit Record"),
      h("p", {}, `Anonymous link, ${label(link.permission)}, expires ${when(link.expires_at)}. A link's terms are sealed into it: to change them, delete it and create a new one.`),
      h("div", { class: "actions" }, remove),
    );
  }

  function newShare(): void {
    selected = null;
    render();
    const email = h("input", { type: "email", name: "email", autocomplete: "off" });
    const expires = dateInput();
    const permission = permissionSelect();
    const message = h("textarea", { name: "message", rows: "3", maxlength: "4000" });
    const who = h("p", { class: "hint", "data-testid": "recipient-check" });
    const save = h("button", { type: "button", class: "primary" }, "Save");
    // The email last checked: a change event for the same value (the field losing focus to the
    // check's own button, say) keeps the check on screen.
    let checked = "";
    const check = (): void => {
      const typed = email.value.trim();
      checked = typed;
      who.textContent = "";
      who.classList.remove("error");
      if (!typed.includes("@")) return;
      if (typed.toLowerCase() === app.email.toLowerCase()) {
        who.textContent = "This is your own email: saving creates an anonymous shareable link.";
        return;
      }
      app.runtime.call<Recipient>("recipient", { email: typed }).then(
        (found) => {
          // An answer for an email typed before the current one.
          if (checked !== typed) return;
          if (!found.exists) {
            who.textContent = "No SecurePACS account has this email yet. The share stays pending until they register; then it completes the next time you open SecurePACS.";
          } else if (found.warning) {
            replace(
              who,
              found.warning,
              " ",
              trustNewKey(app, typed, found.fingerprint, (text, failed) => {
                if (failed) {
                  who.textContent = text;
                  who.classList.add("error");
                } else check();
              }),
            );
            who.classList.add("error");
          } else {
            who.textContent =
              `Their key fingerprint: ${found.fingerprint}. ` +
              (found.seen === "new"
                ? "You have not shared with them from this browser before: compare it with them in person or by phone."
                : "It is the one this browser saw before.");
          }
        },
        (error: unknown) => {
          if (checked !== typed) return;
          who.textContent = errorText(error);
          who.classList.add("error");
        },
      );
    };
    email.addEventListener("change", () => {
      if (email.value.trim() !== checked) check();
    });
    save.addEventListener("click", () => {
      void act(async () => {
        const result = await app.runtime.call<{ link_url?: string; pending?: boolean; fingerprint?: string }>("create_share", {
          study_id: row.study_id,
          email: email.value,
          permission: permission.value,
          expires: expires.value,
          message: message.value,
        });
        if (result.link_url) {
          replace(panel, h("h3", {}, "Anonymous link"), linkShown(result.link_url));
          say("");
        } else {
          replace(panel);
          say(result.pending ? `Shared with ${email.value.trim()}: pending until they register.` : `Shared with ${email.value.trim()}.`);
        }
      });
    });
    replace(
      panel,
      h("h3", {}, "Share study with"),
      field("Email", email),
      who,
      field("Expiration date", expires),
      field("Permission type", permission),
      permissionHint(permission),
      field("Message", message),
      h("p", { class: "hint" }, "Keep the message short, without patient identifiers or sensitive study details. It is encrypted for the recipient."),
      h("p", { class: "tip", "data-testid": "share-tip" }, TIP),
      h("div", { class: "actions" }, save),
    );
    email.focus();
  }

  function newLink(): void {
    selected = null;
    render();
    const permission = permissionSelect("view", true);
    const expires = dateInput();
    const usePassword = h("input", { type: "checkbox", name: "use_password" });
    const password = h("input", { type: "password", name: "link_password", autocomplete: "new-password", disabled: true });
    usePassword.addEventListener("change", () => {
      password.disabled = !usePassword.checked;
    });
    const create = h("button", { type: "button", class: "primary" }, "Create link");
    create.addEventListener("click", () => {
      void act(async () => {
        if (usePassword.checked && password.value.length === 0) throw new Error("Enter the link password, or clear Require a password.");
        const result = await app.runtime.call<{ link_url: string }>("create_link", {
          study_id: row.study_id,
          permission: permission.value,
          expires: expires.value,
          password: usePassword.checked ? password.value : "",
        });
        replace(panel, h("h3", {}, "Anonymous link"), linkShown(result.link_url));
        say(usePassword.checked ? "Give the password to the recipient separately from the link." : "");
      });
    });
    replace(
      panel,
      h("h3", {}, "Create anonymous link"),
      h("p", {}, "Anyone with the link can open the study without an account. The link's secret never reaches the server."),
      field("Permission type", permission),
      permissionHint(permission),
      field("Expiration date", expires),
      h("label", { class: "check" }, usePassword, " Require a password"),
      field("Link password", password),
      h("div", { class: "actions" }, create),
    );
  }

  async function act(run: () => Promise<void>): Promise<void> {
    for (const button of panel.querySelectorAll("button")) button.disabled = true;
    say("Working…");
    try {
      await run();
      await reload();
    } catch (error) {
      say(errorText(error), true);
    } finally {
      for (const button of panel.querySelectorAll("button")) button.disabled = false;
    }
  }

  // Enabled once the list is in, so that nothing the person started is moved by its arrival.
  const toolbar = h(
    "div",
    { class: "actions" },
    h("button", { type: "button", disabled: true, onclick: newShare }, "New Share"),
    h("button", { type: "button", disabled: true, onclick: newLink }, "Create anonymous link"),
  );
  const body = h("div", { class: "shares" }, h("div", { class: "share-left" }, toolbar, list), panel);
  const dialog = openDialog(`Manage Shares: ${describe(row)}`, [body, status], [{ label: "Close", value: "close" }], {
    testId: "shares-dialog",
  });
  await reload();
  for (const button of toolbar.querySelectorAll("button")) button.disabled = false;
  await dialog;
}
