/* The web chat's script (bot/web/webchat.py): turns the page's forms into a conversation over
   POST /chat/api. Without it the same forms post to /chat and the server renders the page.
   Every text from the user or the bot is inserted with textContent, never as HTML. */
(function () {
  "use strict";

  var log = document.getElementById("log");
  var ask = document.getElementById("ask");
  var input = document.getElementById("question");
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  /* "/quiz" and the like in a reply, at the start or after a space or punctuation (not inside a URL) */
  var COMMAND = /(^|[\s（(：:，,、“])(\/(?:start|help|ask|obligations|quiz|role|region|me|privacy|forget))\b/g;
  var busy = false;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* The text with every "/command" as a small button that sends it. */
  function textWithCommands(text, cls) {
    var box = el("div", cls || "text");
    var last = 0;
    text.replace(COMMAND, function (match, before, command, at) {
      var start = at + before.length;
      if (start > last) box.appendChild(document.createTextNode(text.slice(last, start)));
      var b = el("button", "command", command);
      b.type = "button";
      b.setAttribute("data-text", command);
      box.appendChild(b);
      last = start + command.length;
      return match;
    });
    if (last < text.length) box.appendChild(document.createTextNode(text.slice(last)));
    return box;
  }

  function buttonsForm(rows) {
    var form = el("form", "buttons");
    form.method = "post";
    form.action = "/chat";
    form.setAttribute("data-chat", "");
    var hidden = el("input");
    hidden.type = "hidden";
    hidden.name = "csrf";
    hidden.value = csrf;
    form.appendChild(hidden);
    rows.forEach(function (row) {
      var line = el("div", "row");
      row.forEach(function (b) {
        var button = el("button", b.token ? "" : "example", b.label);
        button.type = "submit";
        button.name = b.token ? "button" : "text";
        button.value = b.token || b.text;
        line.appendChild(button);
      });
      form.appendChild(line);
    });
    return form;
  }

  function fill(item, reply) {
    item.textContent = "";
    if (reply.text) item.appendChild(textWithCommands(reply.text));
    if (reply.sources && reply.sources.length) {
      var list = el("ul", "sources");
      list.setAttribute("aria-label", "出处");
      reply.sources.forEach(function (s) { list.appendChild(el("li", "", s)); });
      item.appendChild(list);
    }
    if (reply.after) item.appendChild(textWithCommands(reply.after, "after"));
    if (reply.buttons && reply.buttons.length) item.appendChild(buttonsForm(reply.buttons));
    item.setAttribute("data-text", (reply.text || "") + "\n" + (reply.after || ""));
  }

  function add(who, reply) {
    var item = el("li", "msg " + who);
    if (who === "bot") fill(item, reply);
    else item.appendChild(el("div", "text", reply.text));
    log.appendChild(item);
    return item;
  }

  function notice(message, code) {
    var item = add("notice", {text: message});
    if (code === "no_session" && window.top !== window.self) {  /* in a frame of another site: cookies are off */
      var link = el("a", "", "在新窗口中打开");
      link.href = window.location.href;
      link.target = "_blank";
      link.rel = "noopener";
      item.appendChild(link);
    }
    return item;
  }

  function send(payload, pressed) {
    busy = true;
    document.body.classList.add("busy");
    var waiting = add("pending", {text: "正在查找…"});
    waiting.scrollIntoView({block: "end"});
    fetch("/chat/api", {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify(payload)
    }).then(function (response) {
      return response.json().catch(function () { return {error: "服务暂时不可用，请稍后再试。"}; });
    }).then(function (data) {
      waiting.remove();
      if (data.error) {
        notice(data.error, data.code).scrollIntoView({block: "end"});
        return;
      }
      var replies = data.replies || [];
      var owner = pressed && pressed.closest("li.msg");
      /* a check box ticked: the same prompt comes back with the new marks; update it in place */
      var same = replies.length === 1 ? (replies[0].text || "") + "\n" + (replies[0].after || "") : null;
      if (owner && same !== null && owner.getAttribute("data-text") === same) {
        fill(owner, replies[0]);
        return;
      }
      if (pressed) {
        var row = pressed.closest(".row");
        pressed.classList.add("chosen");
        if (row) row.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      }
      var first = null;
      replies.forEach(function (reply) {
        var item = add("bot", reply);
        first = first || item;
      });
      if (first) first.scrollIntoView({block: "start"});
    }).catch(function () {
      waiting.remove();
      notice("网络连接出错，请稍后再试。").scrollIntoView({block: "end"});
    }).then(function () {
      busy = false;
      document.body.classList.remove("busy");
    });
  }

  /* the button that submitted a form: event.submitter, or (older phone browsers, e.g. iOS Safari
     before 15.4, which WeChat's in-app browser uses there) the submit button clicked last */
  var clicked = null;
  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target.closest("button[type=submit]") : null;
    clicked = target;
  }, true);

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-chat")) return;
    event.preventDefault();
    if (busy) return;
    var pressed = event.submitter || (clicked && clicked.form === form ? clicked : null);
    clicked = null;
    if (pressed && pressed.name === "button") {
      send({button: pressed.value}, pressed);
    } else if (pressed && pressed.name === "text") {
      add("me", {text: pressed.textContent});
      send({text: pressed.value}, null);
    } else {
      var text = input.value.trim();
      if (!text) return;
      input.value = "";
      add("me", {text: text});
      send({text: text}, null);
      input.focus();
    }
  });

  log.addEventListener("click", function (event) {
    var target = event.target;
    if (!target.matches || !target.matches("button.command") || busy) return;
    add("me", {text: target.getAttribute("data-text")});
    send({text: target.getAttribute("data-text")}, null);
  });

  /* Enter sends, Shift+Enter starts a new line */
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (ask.requestSubmit) ask.requestSubmit(); else ask.dispatchEvent(new Event("submit", {cancelable: true}));
    }
  });

  log.querySelectorAll("li.msg.bot").forEach(function (item) {
    var text = item.querySelector(".text"), after = item.querySelector(".after");
    item.setAttribute("data-text", (text ? text.textContent : "") + "\n" + (after ? after.textContent : ""));
  });
})();
