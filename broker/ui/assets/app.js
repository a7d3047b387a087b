// The console's only script (CSP: no inline script). Plain ES2020, no dependencies; the pages work without it.
// Live updates: on `changed` from <base>/events, refetch the page and swap each [data-live] region (not while a
// field in it has focus). Session player: Play/Pause/Step through li[data-offset-ms] at recorded pace / speed.
(() => {
  const base = document.body.dataset.base || '/ui';

  // Live updates
  const regions = () => Array.from(document.querySelectorAll('[data-live]'));
  let inflight = false;
  let again = false;
  let deferred = false;

  /** Whether a person is busy inside the region: focus on a field (a deny reason being typed, a select open). */
  const busy = (el) => {
    const a = document.activeElement;
    return a !== null && el.contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName) && a.type !== 'submit';
  };

  /** A selector to find the focused element again in the new markup: its id, else its form's action and name. */
  const focusKey = (el) => {
    const a = document.activeElement;
    if (!a || !el.contains(a)) return null;
    if (a.id) return `#${CSS.escape(a.id)}`;
    const form = a.closest('form');
    const name = a.getAttribute('name');
    if (form) return `form[action="${CSS.escape(form.getAttribute('action') || '')}"] ${name ? `[name="${CSS.escape(name)}"]` : a.tagName}`;
    const href = a.getAttribute('href');
    return href ? `a[href="${CSS.escape(href)}"]` : '';
  };

  const refresh = async () => {
    if (inflight) {
      again = true;
      return;
    }
    inflight = true;
    try {
      const res = await fetch(location.href, { credentials: 'same-origin', headers: { Accept: 'text/html' } });
      if (!res.ok) return;
      const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
      for (const el of regions()) {
        const fresh = doc.querySelector(`[data-live="${CSS.escape(el.dataset.live)}"]`);
        if (!fresh) continue; // signed out meanwhile, or the page changed shape: leave it
        if (busy(el)) {
          deferred = true;
          continue;
        }
        if (el.innerHTML === fresh.innerHTML) continue;
        const key = focusKey(el);
        el.innerHTML = fresh.innerHTML;
        if (key === null) continue;
        // Focus was inside: back on the same control, else (it went, e.g. the request was decided) on the region.
        const back = key && el.querySelector(key);
        if (!back && !el.hasAttribute('tabindex')) el.tabIndex = -1;
        (back || el).focus({ preventScroll: true });
      }
    } catch {
      // Offline or the broker restarting: the next event tries again.
    } finally {
      inflight = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  };

  if (regions().length && 'EventSource' in window) {
    // The browser reconnects by itself after an error (the server may send `retry:`).
    const events = new EventSource(`${base}/events`);
    let timer = 0;
    events.addEventListener('changed', () => {
      clearTimeout(timer);
      timer = setTimeout(refresh, 150); // several changes at once: one fetch
    });
    // A region skipped while someone was in a field catches up when they leave it.
    document.addEventListener('focusout', () => {
      if (!deferred) return;
      deferred = false;
      setTimeout(refresh, 0);
    });
  }

  // Session player
  for (const player of document.querySelectorAll('[data-player]')) {
    const items = Array.from(player.querySelectorAll('li[data-offset-ms]'));
    const controls = player.querySelector('[data-player-controls]');
    const status = player.querySelector('[data-status]');
    const playBtn = player.querySelector('[data-action="play"]');
    const pauseBtn = player.querySelector('[data-action="pause"]');
    const stepBtn = player.querySelector('[data-action="step"]');
    const speedSel = player.querySelector('[data-speed]');
    if (!items.length || !controls || !status || !playBtn || !pauseBtn || !stepBtn || !speedSel) continue;
    controls.hidden = false;

    let current = -1;
    let timer = 0;
    let playing = false;
    const offsetOf = (i) => Number(items[i].dataset.offsetMs) || 0;
    const speed = () => Number(speedSel.value) || 1;
    const seconds = (ms) => `${(ms / 1000).toFixed(1)}s`;

    const row = (li) => {
      const seq = li.dataset.seq;
      return seq ? document.getElementById(`st-${seq}`) : null;
    };

    const show = (i) => {
      const prev = items.find((li) => li.classList.contains('current'));
      if (prev) {
        prev.classList.remove('current');
        prev.removeAttribute('aria-current');
        row(prev)?.classList.remove('current');
      }
      current = i;
      const li = items[i];
      li.classList.add('current');
      li.setAttribute('aria-current', 'step');
      row(li)?.classList.add('current');
      li.scrollIntoView({ block: 'nearest' });
      const next = i + 1 < items.length ? ` Next in ${seconds((offsetOf(i + 1) - offsetOf(i)) / speed())}.` : '';
      const text = li.cloneNode(true);
      for (const h of text.querySelectorAll('[aria-hidden]')) h.remove();
      status.textContent = `Statement ${i + 1} of ${items.length}: ${text.textContent.replace(/\s+/g, ' ').trim()}.${playing ? next : ''}`;
    };

    const setPlaying = (on) => {
      const had = document.activeElement;
      playing = on;
      playBtn.disabled = on;
      pauseBtn.disabled = !on;
      // Focus does not stay on a button that just got disabled: it moves to its counterpart.
      if (had === playBtn && on) pauseBtn.focus();
      if (had === pauseBtn && !on) playBtn.focus();
    };

    const schedule = () => {
      clearTimeout(timer);
      if (!playing) return;
      if (current + 1 >= items.length) {
        setPlaying(false);
        status.textContent += ' End of the session.';
        return;
      }
      const wait = current < 0 ? 0 : Math.max(0, offsetOf(current + 1) - offsetOf(current)) / speed();
      timer = setTimeout(() => {
        show(current + 1);
        schedule();
      }, wait);
    };

    playBtn.addEventListener('click', () => {
      if (current + 1 >= items.length) current = -1; // at the end: start over (show() moves the highlight)
      setPlaying(true);
      schedule();
    });
    pauseBtn.addEventListener('click', () => {
      clearTimeout(timer);
      setPlaying(false);
      if (current >= 0) show(current);
      else status.textContent = 'Paused.';
    });
    stepBtn.addEventListener('click', () => {
      show(current + 1 < items.length ? current + 1 : 0);
      schedule();
    });
    speedSel.addEventListener('change', () => {
      if (playing) schedule(); // the wait for the next statement at the new pace, counted from now
    });
  }
})();
