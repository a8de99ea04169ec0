// Local preferences (the last search source, the email for Remember me), kept in localStorage
// when the browser keeps data for this site, otherwise only in memory. Some private modes and
// browsers with storage turned off give no persistent storage: the app says so (the manual's
// "memory-only mode") instead of losing state silently. Nothing secret is ever stored here.

export type StorageMode = "persistent" | "memory";

// Where a browser still tells: storage that throws (Safari's private mode, site data blocked by
// a setting or policy), IndexedDB that refuses to open (Firefox's older private windows), or a
// quota too small to keep anything. Chromium's incognito windows answer like normal ones on
// purpose (same quota, working storage, wiped at close); the app keeps nothing secret locally,
// so the one thing lost there is these preferences.
const TINY_QUOTA_BYTES = 120 * 1024 * 1024;

function indexedDbOpens(): Promise<boolean> {
  return new Promise((resolve) => {
    try {
      const request = window.indexedDB.open("securepacs-probe");
      request.onsuccess = () => {
        request.result.close();
        resolve(true);
      };
      request.onerror = () => resolve(false);
    } catch {
      resolve(false);
    }
  });
}

export async function detectStorageMode(): Promise<StorageMode> {
  try {
    const probe = "securepacs.probe";
    window.localStorage.setItem(probe, "1");
    window.localStorage.removeItem(probe);
  } catch {
    return "memory";
  }
  if (!(await indexedDbOpens())) return "memory";
  try {
    const estimate = await navigator.storage.estimate();
    if (estimate.quota !== undefined && estimate.quota < TINY_QUOTA_BYTES) return "memory";
  } catch {
    return "memory";
  }
  return "persistent";
}

export class Preferences {
  private readonly memory = new Map<string, string>();

  constructor(readonly mode: StorageMode) {}

  get(key: string): string | null {
    if (this.mode === "memory") return this.memory.get(key) ?? null;
    return window.localStorage.getItem(`securepacs.${key}`);
  }

  set(key: string, value: string): void {
    if (this.mode === "memory") this.memory.set(key, value);
    else window.localStorage.setItem(`securepacs.${key}`, value);
  }

  remove(key: string): void {
    this.memory.delete(key);
    if (this.mode === "persistent") window.localStorage.removeItem(`securepacs.${key}`);
  }
}
