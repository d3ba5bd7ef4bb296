"""Signature test vectors from Pusher's documentation."""

from broadcaster.protocol.signatures import (
    api_string_to_sign,
    body_md5,
    channel_auth,
    sign,
    sign_api_request,
    user_auth,
    verify_api_signature,
    verify_channel_auth,
)

KEY = "278d425bdf160c739803"
SECRET = "7ad3773142a6692b25b8"
SOCKET = "1234.1234"


def test_private_channel_vector() -> None:
    expected = "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
    assert channel_auth(KEY, SECRET, SOCKET, "private-foobar") == f"{KEY}:{expected}"
    assert verify_channel_auth(KEY, SECRET, SOCKET, "private-foobar", f"{KEY}:{expected}")


def test_presence_channel_vector() -> None:
    data = '{"user_id":10,"user_info":{"name":"Mr. Pusher"}}'
    expected = "afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c"
    assert channel_auth(KEY, SECRET, SOCKET, "presence-foobar", data) == f"{KEY}:{expected}"
    assert verify_channel_auth(KEY, SECRET, SOCKET, "presence-foobar", f"{KEY}:{expected}", data)
    # The signature covers channel_data byte for byte: re-serialised JSON does not verify.
    spaced = '{"user_id": 10, "user_info": {"name": "Mr. Pusher"}}'
    assert not verify_channel_auth(KEY, SECRET, SOCKET, "presence-foobar", f"{KEY}:{expected}",
                                   spaced)


def test_signin_vector() -> None:
    expected = "4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"
    assert user_auth(KEY, SECRET, SOCKET, '{"id":"12345"}') == f"{KEY}:{expected}"


def test_http_api_vector() -> None:
    body = b'{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}'
    assert body_md5(body) == "ec365a775a4cd0599faeb73354201b6f"
    params = {
        "auth_key": KEY,
        "auth_timestamp": "1353088179",
        "auth_version": "1.0",
        "body_md5": "ec365a775a4cd0599faeb73354201b6f",
    }
    expected = "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
    assert sign_api_request(SECRET, "POST", "/apps/3/events", params) == expected
    assert verify_api_signature(SECRET, "POST", "/apps/3/events",
                                {**params, "auth_signature": expected})


def test_api_string_sorts_lowercases_and_skips_signature() -> None:
    params = {"b": "2", "A": "1", "auth_signature": "x"}
    assert api_string_to_sign("get", "/p", params) == "GET\n/p\na=1&b=2"


def test_wrong_key_wrong_socket_and_garbage_are_refused() -> None:
    good = channel_auth(KEY, SECRET, SOCKET, "private-foobar")
    signature = good.split(":", 1)[1]
    assert not verify_channel_auth(KEY, SECRET, SOCKET, "private-foobar", f"other:{signature}")
    assert not verify_channel_auth(KEY, SECRET, "1234.1235", "private-foobar", good)
    assert not verify_channel_auth(KEY, SECRET, SOCKET, "private-foobar", "")
    assert not verify_channel_auth(KEY, SECRET, SOCKET, "private-foobar", "ünïcode")
    assert sign(SECRET, "x") != sign(SECRET + "y", "x")


def test_sign_equals_the_standard_library_hmac_for_every_key_length() -> None:
    # Keys shorter than, equal to and longer than SHA-256's 64-byte block (hashed first).
    import hashlib
    import hmac

    from broadcaster.protocol.signatures import webhook_signature

    for length in (0, 1, 20, 63, 64, 65, 200):
        secret = "".join(chr(97 + i % 26) for i in range(length))
        for message in ("", "a", "POST\n/apps/1/events\nauth_key=k", "é✓" * 500):
            expected = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
            assert sign(secret, message) == expected
            assert webhook_signature(secret, message.encode()) == expected
    # A second secret with the same start is keyed on its own (no cross-talk in the cache).
    assert sign("secret-a", "m") != sign("secret-b", "m")
