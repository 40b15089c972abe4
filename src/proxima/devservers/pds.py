"""A small AT Protocol PDS on 127.0.0.1 for the demo and the tests, built on ``arroba``.

It uses arroba's repo storage and handlers.

Usage::

    with local_pds() as pds:
        channel = BlueskyChannel(pds.url, pds.handle, pds.password)
        ...
        posts = pds.records("app.bsky.feed.post")   # what the repo now holds
        data = pds.blob(posts[0].value["embed"]["images"][0]["image"]["ref"]["$link"])

What comes from arroba: the repository (``arroba.repo.Repo`` over ``arroba.storage.MemoryStorage``,
signed commits, the MST) and the ``com.atproto.repo`` handlers ``createRecord``, ``putRecord``,
``getRecord``, ``listRecords``, ``deleteRecord`` and ``applyWrites`` (``arroba.xrpc_repo``), plus
the lexicon validation of ``lexrpc.Server``.

What this module adds, because arroba leaves it to the application (or, for its own
``createSession``, takes one password and one token from environment variables): the HTTP
endpoint (a small Flask view doing what ``lexrpc.flask_server`` does, which needs ``flask_sock``),
sessions with real signed JWTs that expire (``createSession``, ``refreshSession``,
``getSession``), ``uploadBlob`` (arroba answers 501) with blobs kept in memory, and a
``createRecord`` that refuses an existing record key the way bsky.social does (a 500) instead of
overwriting it. :meth:`LocalPDS.fail` makes chosen methods fail, before or after they ran, to
test error handling against a real server.

Several accounts: :meth:`LocalPDS.create_account` adds a public user with its own repo and
password (its session comes from ``createSession`` like the first account's). A real PDS proxies
the ``app.bsky`` read queries to an AppView, which indexes every repo of the network; this one has
no AppView, so it answers ``app.bsky.actor.getProfile``/``getProfiles``,
``app.bsky.feed.getPosts`` and ``app.bsky.feed.searchPosts`` itself, by scanning the records its
repos hold: follow records for the follower counts, like and repost records, replies and quotes
for a post's counters, and posts' text, hashtag facets and ``tags`` for search.

arroba keeps its storage and its authentication hook in module globals; each request swaps in
its own PDS's under a lock, so several :class:`LocalPDS` may run in one process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import secrets
import threading
import time
import warnings
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["LocalPDS", "PdsAccount", "Record", "local_pds"]

_LOCK = threading.RLock()
"""Serializes requests of every LocalPDS: arroba reads ``arroba.server.storage`` as a global."""


def _import_arroba() -> dict[str, Any]:
    """arroba's modules, imported once; ``webutil`` (an arroba dependency) warns on import."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="websockets", category=DeprecationWarning)
        import arroba.server
        import arroba.storage
        import arroba.util
        import arroba.xrpc_repo
        from arroba.repo import Repo
    return {"server": arroba.server, "storage": arroba.storage, "util": arroba.util,
            "xrpc_repo": arroba.xrpc_repo, "Repo": Repo}


_current: LocalPDS | None = None
"""The PDS whose request is being served (set with arroba's globals, under ``_LOCK``)."""
_shared_xrpc: Any = None


def _xrpc_server() -> Any:
    """One ``lexrpc.Server`` for every LocalPDS (loading the lexicons takes a while).

    arroba's handlers find their PDS through arroba's globals, ours through ``_current``.
    """
    global _shared_xrpc  # noqa: PLW0603
    with _LOCK:
        if _shared_xrpc is None:
            import lexrpc.server

            repo = _import_arroba()["xrpc_repo"]

            def ours(name: str) -> Any:
                def call(*args: Any, **kwargs: Any) -> Any:
                    return getattr(_current, name)(*args, **kwargs)

                return call

            server = lexrpc.server.Server(validate=True, require_lexicons=False)
            for nsid, fn in {
                "com.atproto.repo.putRecord": repo.put_record,
                "com.atproto.repo.getRecord": repo.get_record,
                "com.atproto.repo.listRecords": repo.list_records,
                "com.atproto.repo.deleteRecord": repo.delete_record,
                "com.atproto.repo.applyWrites": repo.apply_writes,
                "com.atproto.repo.createRecord": ours("_create_record"),
                "com.atproto.repo.uploadBlob": ours("_upload_blob"),
                "com.atproto.server.createSession": ours("_create_session"),
                "com.atproto.server.refreshSession": ours("_refresh_session"),
                "com.atproto.server.getSession": ours("_get_session"),
                "app.bsky.actor.getProfile": ours("_get_profile"),
                "app.bsky.actor.getProfiles": ours("_get_profiles"),
                "app.bsky.feed.getPosts": ours("_get_posts"),
                "app.bsky.feed.searchPosts": ours("_search_posts"),
            }.items():
                server.register(nsid, fn)
            _shared_xrpc = server
        return _shared_xrpc


@dataclasses.dataclass(frozen=True)
class Record:
    """A record as the repo holds it, in JSON form (CIDs as ``{"$link": ...}``)."""

    uri: str
    rkey: str
    cid: str
    value: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class PdsAccount:
    """An account of the PDS: its DID, handle and password (``createSession`` takes either name)."""

    did: str
    handle: str
    password: str


@dataclasses.dataclass
class _Failure:
    status: int
    error: str
    times: int
    after: bool
    skip: int


class LocalPDS:
    """A PDS served on an ephemeral port of 127.0.0.1 until :meth:`stop`.

    ``url`` is the base URL (``http://127.0.0.1:PORT``), ``handle``/``did``/``password`` the
    first account (:meth:`create_account` adds others); ``calls`` counts requests per NSID;
    ``access_ttl`` is how long an access token lives.
    """

    def __init__(self, handle: str = "crew.proxima.test", password: str = "correct horse",  # noqa: S107
                 *, access_ttl: float = 3600.0) -> None:
        self._a = _import_arroba()
        from flask import Flask

        self.handle = handle
        self.password = password
        self.access_ttl = access_ttl
        self.calls: Counter[str] = Counter()
        self._secret = secrets.token_bytes(32)
        self._revoked_before = 0.0
        self._failures: dict[str, _Failure] = {}
        self._blobs: dict[str, tuple[str, bytes]] = {}

        util = self._a["util"]
        self.storage = self._a["storage"].MemoryStorage()
        self.did = "did:plc:" + hashlib.sha256(handle.encode()).hexdigest()[:24]
        self.accounts: dict[str, PdsAccount] = {}
        """Every account by DID, the first one included."""
        with _LOCK, self._globals():
            self.repo = self._a["Repo"].create(
                self.storage, self.did, signing_key=util.new_key(), handle=handle)
        self.accounts[self.did] = PdsAccount(self.did, handle, password)

        self.xrpc = _xrpc_server()
        app = Flask(__name__)
        app.add_url_rule("/xrpc/<nsid>", view_func=self._dispatch, methods=["GET", "POST"])
        from werkzeug.serving import WSGIRequestHandler, make_server

        class _Quiet(WSGIRequestHandler):
            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                return

        self._http = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self._http.server_port}"
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), name="local-pds",
                                        daemon=True)
        self._thread.start()
        self._stopped = False

    # -- test API -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop serving (the port then refuses connections); idempotent."""
        if not self._stopped:
            self._stopped = True
            self._http.shutdown()
            self._http.server_close()
            self._thread.join(10)

    def create_account(self, handle: str, password: str | None = None) -> PdsAccount:
        """Add a public user with its own repo; it logs in with ``createSession`` as usual."""
        from lexrpc.base import XrpcError

        did = "did:plc:" + hashlib.sha256(handle.encode()).hexdigest()[:24]
        if did in self.accounts or any(a.handle == handle for a in self.accounts.values()):
            raise XrpcError(f"handle {handle} is taken", name="HandleNotAvailable", status=400)
        account = PdsAccount(did, handle, password or secrets.token_urlsafe(12))
        with _LOCK, self._globals():
            self._a["Repo"].create(self.storage, did, signing_key=self._a["util"].new_key(), handle=handle)
            self.accounts[did] = account
        return account

    def records(self, collection: str = "app.bsky.feed.post", did: str | None = None) -> list[Record]:
        """Every record of ``collection`` in the repo of ``did`` (the first account's by default)."""
        with _LOCK:
            return self._records(did or self.did, collection)

    def _records(self, did: str, collection: str) -> list[Record]:
        import dag_json

        util = self._a["util"]
        repo = self.storage.load_repo(did)
        contents = repo.get_contents().get(collection, {})
        out = []
        for rkey in sorted(contents):
            value = contents[rkey]
            out.append(Record(
                uri=util.at_uri(did, collection, rkey), rkey=rkey,
                cid=util.dag_cbor_cid(value).encode("base32"),
                value=json.loads(dag_json.encode(value, dialect="atproto"))))
        return out

    def blob(self, cid: str) -> tuple[str, bytes]:
        """The MIME type and bytes of an uploaded blob."""
        return self._blobs[cid]

    def fail(self, nsid: str, status: int, *, error: str = "InternalServerError", times: int = 1,
             after: bool = False, skip: int = 0) -> None:
        """Answer ``times`` calls of ``nsid``, after the next ``skip`` ones, with ``status``.

        With ``after`` the method runs first (its write lands) and only its answer is replaced: a
        response lost on the way back.
        """
        self._failures[nsid] = _Failure(status, error, times, after, skip)

    def revoke_sessions(self) -> None:
        """Invalidate every token issued so far (as a PDS does on a password change)."""
        time.sleep(0.001)
        self._revoked_before = time.time()

    # -- sessions (added here) --------------------------------------------------------------------

    def _token(self, scope: str, ttl: float, did: str) -> str:
        import jwt

        now = time.time()
        claims = {"scope": scope, "sub": did, "aud": "did:web:127.0.0.1",
                  "iat": int(now), "iat_f": now, "exp": int(now + ttl), "jti": secrets.token_hex(8)}
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def _check_token(self, scope: str) -> str:
        """The DID of the bearer token of the current request, or an XRPC error."""
        import flask
        import jwt
        from lexrpc.base import XrpcError

        header = flask.request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise XrpcError("Authentication Required", name="AuthenticationRequired", status=401)
        try:
            claims = jwt.decode(header.removeprefix("Bearer "), self._secret, algorithms=["HS256"],
                                audience="did:web:127.0.0.1")
        except jwt.ExpiredSignatureError as exc:
            raise XrpcError("Token has expired", name="ExpiredToken", status=400) from exc
        except jwt.InvalidTokenError as exc:
            raise XrpcError("Token could not be verified", name="InvalidToken", status=400) from exc
        if claims.get("scope") != scope or claims.get("iat_f", 0) < self._revoked_before:
            raise XrpcError("Token could not be verified", name="InvalidToken", status=400)
        return str(claims["sub"])

    def _session(self, did: str) -> dict[str, Any]:
        return {"did": did, "handle": self.accounts[did].handle,
                "accessJwt": self._token("com.atproto.access", self.access_ttl, did),
                "refreshJwt": self._token("com.atproto.refresh", 90 * 86400, did)}

    def _create_session(self, input: dict[str, Any]) -> dict[str, Any]:
        import hmac

        from lexrpc.base import XrpcError

        identifier = input.get("identifier")
        account = next((a for a in self.accounts.values() if identifier in (a.handle, a.did)), None)
        password = account.password if account is not None else secrets.token_hex(16)
        ok_password = hmac.compare_digest(str(input.get("password", "")), password)
        if account is None or not ok_password:
            raise XrpcError("Invalid identifier or password", name="AuthenticationRequired", status=401)
        return self._session(account.did)

    def _refresh_session(self, input: Any) -> dict[str, Any]:
        return self._session(self._check_token("com.atproto.refresh"))

    def _get_session(self, input: Any) -> dict[str, Any]:
        did = self._check_token("com.atproto.access")
        return {"did": did, "handle": self.accounts[did].handle}

    def _authenticate(self) -> tuple[str, object]:
        """arroba's ``authenticate`` hook: the access token's DID with every scope."""
        return self._check_token("com.atproto.access"), self._a["server"].ALL_SCOPES

    # -- the AppView queries (added here) ------------------------------------------------------------

    def _everything(self) -> dict[str, dict[str, list[Record]]]:
        """Every repo's records of the collections the queries read: ``{did: {collection: [...]}}``."""
        wanted = ("app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.feed.repost",
                  "app.bsky.graph.follow", "app.bsky.actor.profile")
        return {did: {c: self._records(did, c) for c in wanted} for did in self.accounts}

    def _account(self, actor: str) -> PdsAccount:
        from lexrpc.base import XrpcError

        found = next((a for a in self.accounts.values() if actor in (a.did, a.handle)), None)
        if found is None:
            raise XrpcError("Profile not found", name="InvalidRequest", status=400)
        return found

    def _profile(self, account: PdsAccount, everything: dict[str, dict[str, list[Record]]]) -> dict[str, Any]:
        mine = everything[account.did]
        followers = sum(
            1 for repo in everything.values() for r in repo["app.bsky.graph.follow"]
            if r.value.get("subject") == account.did)
        view: dict[str, Any] = {
            "did": account.did, "handle": account.handle,
            "followersCount": followers, "followsCount": len(mine["app.bsky.graph.follow"]),
            "postsCount": len(mine["app.bsky.feed.post"])}
        profile = next((r.value for r in mine["app.bsky.actor.profile"] if r.rkey == "self"), None)
        if profile and isinstance(profile.get("displayName"), str):
            view["displayName"] = profile["displayName"]
        return view

    def _get_profile(self, input: Any, actor: str) -> dict[str, Any]:
        self._check_token("com.atproto.access")
        return self._profile(self._account(actor), self._everything())

    def _get_profiles(self, input: Any, actors: list[str]) -> dict[str, Any]:
        self._check_token("com.atproto.access")
        everything = self._everything()
        known = [a for a in self.accounts.values() if a.did in actors or a.handle in actors]
        return {"profiles": [self._profile(a, everything) for a in known]}

    def _post_view(self, record: Record, everything: dict[str, dict[str, list[Record]]]) -> dict[str, Any]:
        import dag_json

        did = record.uri.removeprefix("at://").split("/", 1)[0]

        def subject_is(r: Record) -> bool:
            subject = r.value.get("subject")
            return isinstance(subject, dict) and subject.get("uri") == record.uri

        posts = [p for repo in everything.values() for p in repo["app.bsky.feed.post"]]
        return {
            "uri": record.uri, "cid": record.cid,
            "author": {"did": did, "handle": self.accounts[did].handle},
            "record": dag_json.decode(json.dumps(record.value).encode(), dialect="atproto"),
            "indexedAt": record.value.get("createdAt", ""),
            "likeCount": sum(1 for repo in everything.values() for r in repo["app.bsky.feed.like"]
                             if subject_is(r)),
            "repostCount": sum(1 for repo in everything.values() for r in repo["app.bsky.feed.repost"]
                               if subject_is(r)),
            "replyCount": sum(1 for p in posts if _reply_parent(p.value) == record.uri),
            "quoteCount": sum(1 for p in posts if _quoted(p.value) == record.uri),
        }

    def _get_posts(self, input: Any, uris: list[str]) -> dict[str, Any]:
        self._check_token("com.atproto.access")
        everything = self._everything()
        by_uri = {p.uri: p for repo in everything.values() for p in repo["app.bsky.feed.post"]}
        return {"posts": [self._post_view(by_uri[u], everything) for u in uris if u in by_uri]}

    def _search_posts(self, input: Any, q: str, since: str | None = None, until: str | None = None,
                      limit: int = 25, cursor: str | None = None, author: str | None = None,
                      lang: str | None = None, tag: list[str] | None = None,
                      **_ignored: Any) -> dict[str, Any]:
        """Posts whose text holds every word of ``q`` (``#word``: a hashtag), newest first.

        ``since`` (inclusive) and ``until`` (exclusive) bound ``createdAt``; ``author`` and
        ``lang`` filter; ``cursor`` is the offset of the next page.
        """
        from lexrpc.base import XrpcError

        self._check_token("com.atproto.access")
        everything = self._everything()
        terms = q.casefold().split()
        wanted_tags = {t.casefold().lstrip("#") for t in tag or ()}
        author_did = self._account(author).did if author else None
        lower, upper = _instant(since), _instant(until)
        hits: list[tuple[float, Record]] = []
        for did, repo in everything.items():
            if author_did is not None and did != author_did:
                continue
            for post in repo["app.bsky.feed.post"]:
                at = _instant(post.value.get("createdAt"))
                if at is None or (lower is not None and at < lower) or (upper is not None and at >= upper):
                    continue
                if lang and lang not in (post.value.get("langs") or []):
                    continue
                text = str(post.value.get("text", "")).casefold()
                tags = _post_tags(post.value)
                if not wanted_tags <= tags:
                    continue
                if all(t.lstrip("#") in tags if t.startswith("#") else t in text for t in terms):
                    hits.append((at, post))
        hits.sort(key=lambda hit: (-hit[0], hit[1].uri))
        if cursor is not None and not cursor.isdigit():
            raise XrpcError(f"bad cursor {cursor!r}", name="InvalidRequest", status=400)
        start = int(cursor or 0)
        page = hits[start:start + limit]
        out: dict[str, Any] = {"posts": [self._post_view(p, everything) for _, p in page],
                               "hitsTotal": len(hits)}
        if start + limit < len(hits):
            out["cursor"] = str(start + limit)
        return out

    # -- repo and blobs ---------------------------------------------------------------------------

    def _create_record(self, input: dict[str, Any]) -> Any:
        """arroba's createRecord, except that an existing key is refused as bsky.social does."""
        from lexrpc.base import XrpcError

        rkey = input.get("rkey")
        repo = input.get("repo")
        owner = next((a.did for a in self.accounts.values() if repo in (a.did, a.handle)), self.did)
        if rkey and self.repo_record(input.get("collection", ""), rkey, owner) is not None:
            raise XrpcError("Internal Server Error", name="InternalServerError", status=500)
        return self._a["xrpc_repo"].create_record(input)

    def repo_record(self, collection: str, rkey: str, did: str | None = None) -> Any:
        """The stored record at ``collection/rkey`` of ``did``'s repo (decoded), or ``None``."""
        with _LOCK:
            return self.storage.load_repo(did or self.did).get_record(collection, rkey)

    def _upload_blob(self, input: bytes) -> dict[str, Any]:
        import flask
        from multiformats import CID, multihash

        self._authenticate()
        mime = flask.request.content_type or "application/octet-stream"
        cid = CID("base32", 1, "raw", multihash.digest(input, "sha2-256"))
        self._blobs[cid.encode("base32")] = (mime, bytes(input))
        return {"blob": {"$type": "blob", "ref": cid, "mimeType": mime, "size": len(input)}}

    # -- HTTP -----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _globals(self) -> Iterator[None]:
        global _current
        server = self._a["server"]
        saved = server.storage, server.authenticate, _current
        server.storage, server.authenticate, _current = self.storage, self._authenticate, self
        try:
            yield
        finally:
            server.storage, server.authenticate, _current = saved

    def _dispatch(self, nsid: str) -> Any:
        import dag_json
        import flask
        from lexrpc.base import ValidationError, XrpcError

        with _LOCK:
            self.calls[nsid] += 1
            failure = self._failures.get(nsid)
            if failure is not None and failure.skip > 0:
                failure.skip -= 1
                failure = None
        if failure is not None and not failure.after:
            return self._failed(nsid, failure)
        try:
            lexicon = self.xrpc._get_def(nsid) or {}
            encoding = lexicon.get("input", {}).get("encoding")
            body = flask.request.get_data()
            data: Any
            if encoding in ("application/json", None):
                data = dag_json.decode(body, dialect="atproto") if body else {}
            else:
                data = body
            params = self.xrpc.decode_params(nsid, flask.request.args.items(multi=True))
            with _LOCK, self._globals():
                output = self.xrpc.call(nsid, input=data, **params)
        except NotImplementedError as exc:
            return {"error": "MethodNotImplemented", "message": str(exc)}, 501
        except (XrpcError, ValidationError, ValueError) as exc:
            status = getattr(exc, "status", None) or 400
            return {"error": getattr(exc, "name", None) or "InvalidRequest",
                    "message": getattr(exc, "message", str(exc))}, status
        if failure is not None:
            return self._failed(nsid, failure)
        return flask.Response(dag_json.encode(output or {}, dialect="atproto"),
                              content_type="application/json")

    def _failed(self, nsid: str, failure: _Failure) -> Any:
        with _LOCK:
            failure.times -= 1
            if failure.times <= 0:
                self._failures.pop(nsid, None)
        return {"error": failure.error, "message": f"{nsid} failed on purpose"}, failure.status


def _instant(value: object) -> float | None:
    """A datetime string as POSIX seconds (naive means UTC), or ``None`` when it is none."""
    from datetime import UTC, datetime

    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _reply_parent(post: dict[str, Any]) -> str | None:
    reply = post.get("reply")
    parent = reply.get("parent") if isinstance(reply, dict) else None
    return parent.get("uri") if isinstance(parent, dict) else None


def _quoted(post: dict[str, Any]) -> str | None:
    """The URI a post quotes (``app.bsky.embed.record``, or with media), if any."""
    embed = post.get("embed")
    if not isinstance(embed, dict):
        return None
    if embed.get("$type") == "app.bsky.embed.recordWithMedia":
        embed = embed.get("record")
    if not isinstance(embed, dict) or embed.get("$type") not in (None, "app.bsky.embed.record"):
        return None
    record = embed.get("record")
    return record.get("uri") if isinstance(record, dict) else None


def _post_tags(post: dict[str, Any]) -> set[str]:
    """A post's hashtags, lower case: its tag facets and its ``tags`` array."""
    tags = {str(t).casefold() for t in post.get("tags") or () if isinstance(t, str)}
    for facet in post.get("facets") or ():
        for feature in facet.get("features") or () if isinstance(facet, dict) else ():
            if isinstance(feature, dict) and feature.get("$type") == "app.bsky.richtext.facet#tag":
                tags.add(str(feature.get("tag", "")).casefold())
    return tags


@contextlib.contextmanager
def local_pds(handle: str = "crew.proxima.test", password: str = "correct horse",  # noqa: S107
              *, access_ttl: float = 3600.0) -> Iterator[LocalPDS]:
    """A running :class:`LocalPDS`, stopped on exit."""
    pds = LocalPDS(handle, password, access_ttl=access_ttl)
    try:
        yield pds
    finally:
        pds.stop()
