// The farm monitor's only script: progressive enhancement over server-rendered pages.
// Without it every page still works (forms post, links navigate, a reload shows the news);
// with it, times show in the viewer's time zone and open pages follow the farm live.
//
// Live updates: the page names its stream in <body data-live>. The server pushes the HTML of
// the regions that changed ({name: {html, sig}}); a region is swapped only when its signature
// differs from the one it shows. Focus survives a swap (the focused control is found again by
// its id), and a region holding the field being typed in waits until focus leaves it.
(function () {
  "use strict";

  // In the viewer's zone and locale: today's times as a time only, others with their day
  // (and year, if not this one); the full date and time in the tooltip.
  var clock = { hour: "2-digit", minute: "2-digit", second: "2-digit" };
  var full = { dateStyle: "full", timeStyle: "long" };

  function shortForm(when, now) {
    if (when.toDateString() === now.toDateString()) return when.toLocaleTimeString(undefined, clock);
    var day = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
    if (when.getFullYear() !== now.getFullYear()) day.year = "numeric";
    return when.toLocaleString(undefined, day);
  }

  function localize(root) {
    var now = new Date();
    var times = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var el = times[i];
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime())) continue;
      el.textContent = shortForm(when, now);
      el.title = when.toLocaleString(undefined, full);
    }
  }

  function isField(el) {
    return el && /^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName) && el.type !== "hidden";
  }

  function swap(region, html, sig) {
    var active = document.activeElement;
    var inside = active && active !== document.body && region.contains(active);
    if (inside && isField(active)) {
      region._pending = { html: html, sig: sig };  // applied when focus leaves (see below)
      return;
    }
    var id = inside ? active.id : null;
    region.innerHTML = html;
    region.setAttribute("data-sig", sig);
    region._pending = null;
    localize(region);
    if (id) {
      var again = document.getElementById(id);
      if (again && !again.disabled) again.focus();
    }
  }

  document.addEventListener("focusout", function (e) {
    var region = e.target.closest && e.target.closest("[data-region]");
    if (!region || !region._pending) return;
    setTimeout(function () {
      if (region._pending && !region.contains(document.activeElement)) {
        swap(region, region._pending.html, region._pending.sig);
      }
    }, 0);
  });

  function setStatus(text, state) {
    var el = document.getElementById("live-status");
    if (!el) return;
    el.textContent = text;
    el.setAttribute("data-live-state", state);
  }

  function follow(url, attempt) {
    if (!window.EventSource) return;
    var source = new EventSource(url);
    var lost = null;
    source.addEventListener("open", function () {
      clearTimeout(lost);
      attempt = 0;
      setStatus("live", "open");
    });
    source.addEventListener("error", function () {
      // A stream ends every few minutes and reconnects at once: say so only if it stays down.
      clearTimeout(lost);
      lost = setTimeout(function () { setStatus("reconnecting…", "lost"); }, 3000);
      if (source.readyState !== EventSource.CLOSED) return;  // the browser retries by itself
      // Refused with an HTTP error (the browser gives up): logged out, or a proxy's 502?
      fetch(url, { credentials: "same-origin" }).then(function (r) {
        if (r.body) r.body.cancel();
        if (r.status === 401) window.location.reload();  // the login page
        else retry();
      }, retry);
    });
    function retry() {
      var wait = Math.min(30000, 1000 * Math.pow(2, attempt || 0));
      setTimeout(function () { follow(url, (attempt || 0) + 1); }, wait);
    }
    source.addEventListener("regions", function (e) {
      var regions = JSON.parse(e.data);
      var changed = [];
      Object.keys(regions).forEach(function (name) {
        var region = document.querySelector('[data-region="' + name + '"]');
        if (!region || region.getAttribute("data-sig") === regions[name].sig) return;
        swap(region, regions[name].html, regions[name].sig);
        changed.push(name);
      });
      if (changed.length) {
        document.dispatchEvent(new CustomEvent("farm:updated", { detail: changed }));
      }
    });
    // The server ends each stream after a while (so it can stop): follow the next one now.
    source.addEventListener("again", function () { source.close(); follow(url, 0); });
    function reload() { source.close(); window.location.reload(); }
    source.addEventListener("logout", reload);  // the session's token was revoked
    source.addEventListener("gone", reload);  // the job no longer exists
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // A form with data-confirm asks first (the Cancel button).
  document.addEventListener("submit", function (e) {
    var question = e.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) e.preventDefault();
  });

  // A checkbox or select with data-autosubmit applies at once (its form keeps a button too).
  document.addEventListener("change", function (e) {
    if (e.target.hasAttribute && e.target.hasAttribute("data-autosubmit") && e.target.form) {
      e.target.form.submit();
    }
  });

  function start() {
    localize(document);
    var url = document.body.getAttribute("data-live");
    if (url) follow(url);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();

// The job page's task log view (farm/web/logs.py): a click on a task card follows its log.
(function () {
  var slot = document.getElementById("task-log");
  if (!slot || !window.EventSource) return;
  var pre = slot.querySelector(".log-lines");
  var status = slot.querySelector(".log-status");
  var title = slot.querySelector("h2");
  var source = null;
  var shownAttempt = null;

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function clock(at) {
    var d = new Date(at * 1000);
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  function add(text) {
    var stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.appendChild(document.createTextNode(text + "\n"));
    if (stick) pre.scrollTop = pre.scrollHeight;
  }

  function open(taskId, attempt, after) {
    if (source) source.close();
    var url = "/ui/live/tasks/" + taskId + "/log";
    if (attempt) url += "?attempt=" + attempt + "&after=" + after;
    source = new EventSource(url);
    status.textContent = "following…";
    source.addEventListener("lines", function (e) {
      var data = JSON.parse(e.data);
      if (data.attempt !== shownAttempt) {
        shownAttempt = data.attempt;
        add("=== attempt " + data.attempt + " ===");
      }
      data.lines.forEach(function (l) { add(clock(l[1]) + " " + l[2] + "  " + l[3]); });
    });
    source.addEventListener("again", function (e) {
      var data = JSON.parse(e.data);
      open(taskId, data.attempt, data.after);
    });
    source.addEventListener("end", function (e) {
      source.close();
      source = null;
      status.textContent = "task " + JSON.parse(e.data).state;
    });
    source.addEventListener("error", function () {
      if (source && source.readyState === EventSource.CLOSED) status.textContent = "log unavailable";
    });
  }

  function show(taskId) {
    slot.hidden = false;
    slot.setAttribute("data-task-id", taskId);
    title.textContent = "Task " + taskId + " log";
    pre.textContent = "";
    shownAttempt = null;
    open(taskId, null, -1);
  }

  document.addEventListener("click", function (e) {
    if (e.target.closest("a, button, input, select, textarea, form")) return;
    var card = e.target.closest("[data-task-id]");
    if (card && card !== slot) show(card.getAttribute("data-task-id"));
  });
  var running = document.querySelector('[data-task-id][data-state="running"]');
  if (running) show(running.getAttribute("data-task-id"));
  window.addEventListener("pagehide", function () { if (source) source.close(); });
})();
