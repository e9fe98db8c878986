/* The officer app's service worker: the app shell opens without a network, and Background Sync
 * (where the phone supports it) tells the page to send its queued actions (queue.js). API calls
 * are never answered from a cache. */
'use strict';
const CACHE = 'gw-field-v1';
const SHELL = ['./', 'index.html', 'app.css', 'app.js', 'queue.js', 'manifest.json', 'i18n/zh-CN.json', 'i18n/en.json'];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin || !url.pathname.startsWith('/field/')) {
    return; // the API and everything else: straight to the network
  }
  // Network first, so an updated app shows at once; the cache when the street has no signal.
  event.respondWith(
    fetch(event.request)
      .then((res) => {
        const copy = res.clone();
        caches.open(CACHE).then((c) => c.put(event.request, copy));
        return res;
      })
      .catch(() => caches.match(event.request).then((hit) => hit || caches.match('index.html'))),
  );
});

self.addEventListener('sync', (event) => {
  if (event.tag === 'gw-flush') {
    event.waitUntil(self.clients.matchAll().then((clients) => clients.forEach((c) => c.postMessage('flush'))));
  }
});
