/* The officer app's outbox: actions and photos wait in IndexedDB until the hub has them.
 *
 * Each action gets its idempotency key when it is queued, so sending it again after a lost
 * answer changes nothing at the hub. A photo is uploaded first (stored by content hash: a
 * re-upload is the same file) and its name is saved with the action before the action goes.
 * Items leave the queue only when the hub answered (2xx, or 4xx: refused for good); network
 * errors and 5xx keep them for the next flush. Flushes never overlap.
 */
'use strict';
const GWQueue = (() => {
  const DB = 'gw-field', STORE = 'actions';
  let dbPromise = null;
  let flushing = null;

  function open() {
    if (!dbPromise) {
      dbPromise = new Promise((resolve, reject) => {
        const req = indexedDB.open(DB, 1);
        req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'seq', autoIncrement: true });
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
    }
    return dbPromise;
  }

  async function run(mode, fn) {
    const db = await open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req ? req.result : undefined);
      tx.onerror = () => reject(tx.error);
    });
  }

  const all = () => run('readonly', (s) => s.getAll());
  const put = (item) => run('readwrite', (s) => s.put(item));
  const remove = (seq) => run('readwrite', (s) => s.delete(seq));

  function newKey() {
    if (self.crypto && crypto.randomUUID) return crypto.randomUUID();
    return `${Date.now()}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
  }

  async function add(taskId, action, body, photo) {
    const item = { taskId, action, body: body || {}, photo: photo || null, photoName: null, key: newKey(), at: Date.now() };
    await run('readwrite', (s) => s.add(item));
    return item;
  }

  async function sendOne(item, token) {
    const auth = { Authorization: `Bearer ${token}` };
    if (item.photo && !item.photoName) {
      const up = await fetch('/api/v1/field/photos', { method: 'POST', headers: auth, body: item.photo });
      if (up.status >= 500) return 'retry';
      if (!up.ok) return { failed: (await up.json()).detail?.message || up.status };
      item.photoName = (await up.json()).photo;
      await put(item);
    }
    const body = { ...item.body };
    if (item.photoName) body.photo = item.photoName;
    const res = await fetch(`/api/v1/field/tasks/${item.taskId}/${item.action}`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json', 'Idempotency-Key': item.key },
      body: JSON.stringify(body),
    });
    if (res.status >= 500 || res.status === 401) return 'retry';
    if (!res.ok) return { failed: (await res.json()).detail?.message || res.status };
    return 'sent';
  }

  /* Send everything in order; stops at the first network error. Returns {sent, failed: [...]}. */
  function flush(token) {
    if (flushing) return flushing;
    flushing = (async () => {
      const result = { sent: 0, failed: [] };
      try {
        for (const item of await all()) {
          let outcome;
          try {
            outcome = await sendOne(item, token);
          } catch (err) {
            break; // offline: keep this and everything after it
          }
          if (outcome === 'retry') break;
          if (outcome !== 'sent') result.failed.push({ item, message: outcome.failed });
          else result.sent += 1;
          await remove(item.seq);
        }
      } finally {
        flushing = null;
      }
      return result;
    })();
    return flushing;
  }

  return { add, all, flush };
})();
