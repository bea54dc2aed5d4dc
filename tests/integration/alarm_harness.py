"""Shared pieces of the alarm, notification and write-back integration tests."""

from __future__ import annotations

import json
import threading
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


class JsonRecorder:
    """A real MQTT subscriber (QoS 1) that keeps every JSON message per topic, in arrival order."""

    def __init__(self, port: int, topics: list[str]) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, clean_session=True)
        self.client.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("the recorder could not subscribe")

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        try:
            doc = json.loads(msg.payload)
        except ValueError:
            doc = {"raw": msg.payload.decode(errors="replace")}
        with self._lock:
            self.messages.append((msg.topic, doc))

    def on(self, topic_part: str) -> list[dict[str, Any]]:
        with self._lock:
            return [doc for topic, doc in self.messages if topic_part in topic]

    def transitions(self, alarm: str) -> list[tuple[str, str]]:
        """(transition, state) of every event of `alarm` received so far."""
        return [(d["transition"], d["state"]) for d in self.on(f"/_alarms/{alarm}") if "transition" in d]

    def publish(self, topic: str, doc: dict[str, Any]) -> None:
        self.client.publish(topic, json.dumps(doc), qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class HttpReceiver:
    """A local HTTP server standing in for WeCom / DingTalk / Feishu / a webhook, which cannot be reached here.

    Records every POST (path, query, headers, JSON body) and answers with `answers` in turn
    (status, JSON body), then with the last one forever.
    """

    def __init__(self, answers: list[tuple[int, dict[str, Any]]] | None = None) -> None:
        import http.server
        import urllib.parse

        self.requests: list[dict[str, Any]] = []
        self.answers = list(answers or [(200, {"errcode": 0, "errmsg": "ok"})])
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                url = urllib.parse.urlsplit(self.path)
                with receiver._lock:
                    status, answer = receiver.answers[0] if len(receiver.answers) == 1 else receiver.answers.pop(0)
                    receiver.requests.append(
                        {
                            "path": url.path,
                            "query": dict(urllib.parse.parse_qsl(url.query)),
                            "raw_query": url.query,
                            "headers": dict(self.headers),
                            "body": json.loads(raw) if raw else None,
                            "status": status,
                            "answer": answer,
                        }
                    )
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                return None

        self._lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["path"] == path and r["status"] == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpReceiver:
    """A minimal SMTP server (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) on loopback."""

    def __init__(self) -> None:
        import socketserver

        self.messages: list[dict[str, Any]] = []
        receiver = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                def say(line: str) -> None:
                    self.wfile.write(line.encode() + b"\r\n")

                say("220 localhost test SMTP")
                sender, recipients = "", []
                while line := self.rfile.readline():
                    command = line.decode(errors="replace").strip()
                    verb = command[:4].upper()
                    if verb in ("EHLO", "HELO"):
                        say("250 localhost")
                    elif verb == "MAIL":
                        sender, recipients = command.split(":", 1)[1].strip(), []
                        say("250 OK")
                    elif verb == "RCPT":
                        recipients.append(command.split(":", 1)[1].strip())
                        say("250 OK")
                    elif verb == "DATA":
                        say("354 end with .")
                        data = b""
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            data += chunk[1:] if chunk.startswith(b"..") else chunk
                        receiver.messages.append({"from": sender, "to": recipients, "data": data})
                        say("250 queued")
                    elif verb == "QUIT":
                        say("221 bye")
                        return
                    else:
                        say("250 OK")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
