// The app's state and navigation: which screen shows, what happens after sign-in, and how a
// failed request that concerns the whole session (expired, network) is shown.

import { expiredSessionDialog, networkErrorDialog, sessionWarningDialog } from "../dialogs";
import { h, replace } from "../dom";
import type { Runtime, WorkerFailure } from "../rpc";
import type { Preferences } from "../storage";
import { initializationDialog } from "./account";
import { confirmScreen, loginScreen, recoveryDialog, resetScreen, type SignedIn, unlockScreen } from "./auth";
import type { Windows } from "./windows";
import { workspace } from "./workspace";

export class App {
  uploading = false;
  email = "";
  private statusTimer: number | undefined;
  private warned = false;

  constructor(
    readonly root: HTMLElement,
    readonly runtime: Runtime,
    readonly prefs: Preferences,
    readonly windows: Windows,
  ) {
    runtime.onFailure((failure, method) => this.failed(failure, method));
  }

  private failed(failure: WorkerFailure, method: string): void {
    const signInCalls = ["login", "unlock", "status", "confirm", "register", "reset_password", "recover", "logout"];
    if (failure.status === 401 && !signInCalls.includes(method)) {
      void expiredSessionDialog(this.uploading);
    } else if (failure.kind === "network" && method !== "upload") {
      void networkErrorDialog(this.uploading);
    }
  }

  /** The first screen, from the address: a mailed link, or the session's state. */
  async start(): Promise<void> {
    const token = window.location.hash.slice(1);
    if (window.location.pathname === "/confirm" && token) {
      await confirmScreen(this, token);
      return;
    }
    if (window.location.pathname === "/reset" && token) {
      resetScreen(this, token);
      return;
    }
    const status = await this.runtime.call<SignedIn>("status");
    if (status.state === "signed_out") loginScreen(this);
    else unlockScreen(this, status.email ?? "");
  }

  async afterSignIn(result: SignedIn): Promise<void> {
    if (result.state === "recovery_needed") {
      if (!(await recoveryDialog(this))) {
        loginScreen(this, "Your studies stay locked until you load your recovery key. Log in again when you have it.");
        await this.runtime.call("logout").catch(() => undefined);
        return;
      }
    } else if (result.state !== "unlocked") {
      loginScreen(this);
      return;
    }
    this.email = result.email ?? "";
    await this.keepFingerprints();
    await initializationDialog(this);
    workspace(this);
    this.watchSession();
  }

  /**
   * The key fingerprints this browser has seen, per email (ZK-4): handed to the worker after
   * sign-in and saved whenever it sees a new one, so that a changed key is flagged next time.
   */
  private async keepFingerprints(): Promise<void> {
    const key = `fingerprints.${this.email.toLowerCase()}`;
    let seen: Record<string, string> = {};
    try {
      seen = JSON.parse(this.prefs.get(key) ?? "{}") as Record<string, string>;
    } catch {
      seen = {};
    }
    this.stopFingerprints?.();
    this.stopFingerprints = this.runtime.on("fingerprints", (data) => this.prefs.set(key, JSON.stringify(data)));
    await this.runtime.call("remember_fingerprints", { seen }).catch(() => undefined);
  }

  private stopFingerprints: (() => void) | undefined;

  /** Check the session each minute: expired, or ending soon (the session-warning dialog). */
  private watchSession(): void {
    window.clearInterval(this.statusTimer);
    this.statusTimer = window.setInterval(() => {
      void this.runtime
        .call<{ expires_at: string } | null>("current_session")
        .then((current) => {
          if (!current || this.warned) return;
          const minutes = Math.round((Date.parse(current.expires_at) - Date.now()) / 60_000);
          if (minutes <= 5) {
            this.warned = true;
            void sessionWarningDialog(Math.max(minutes, 0), this.uploading);
          }
        })
        .catch(() => undefined);
    }, 60_000);
  }

  async logout(): Promise<void> {
    if (this.uploading && !window.confirm("An upload is running. Log out and stop it?")) return;
    window.clearInterval(this.statusTimer);
    // Nothing of the signed-in person stays on screen: an open upload panel or dialog goes too.
    for (const leftover of document.querySelectorAll(".upload-panel, dialog, .menu")) leftover.remove();
    // The viewer and download windows show decrypted data: they close with the session.
    this.windows.closeAll();
    await this.runtime.call("logout").catch(() => undefined);
    this.email = "";
    this.uploading = false;
    loginScreen(this, "You are logged out.");
  }

  /** The memory-only notice (user manual, troubleshooting: private browsing). */
  banner(): HTMLElement | null {
    if (this.prefs.mode === "persistent") return null;
    return h(
      "p",
      { class: "banner", role: "note", "data-testid": "memory-only" },
      "Memory-only mode: this browser keeps no persistent storage for SecurePACS (private browsing, or storage turned off). Your settings are forgotten when you close this window. Use a normal browser window when you need local state to persist.",
    );
  }

  /** A full-page message while the runtime loads or when it cannot. */
  bootScreen(text: string, detail = ""): void {
    replace(this.root, h("section", { class: "card auth" }, h("h1", { class: "brand" }, "SecurePACS"), h("p", { "data-testid": "boot" }, text), detail ? h("p", { class: "hint" }, detail) : null));
  }
}
