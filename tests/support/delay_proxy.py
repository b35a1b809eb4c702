"""A TCP proxy that can hold back a server's answers: a slow store (MongoDB) for the tests of
what the gateway does while its reads take seconds."""
import asyncio
import threading
import urllib.parse

from own_gateway import test_gateway


class DelayProxy:
    """TCP proxy to host:port on a free local port; while delay > 0 every chunk from the
    server waits that long before it is passed on (in order, per connection)."""

    def __init__(self, host, port):
        self.host, self.port, self.delay = host, port, 0.0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._main, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _main(self, ready):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0))
        self.listen_port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _pump(self, reader, writer, delayed):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if delayed and self.delay > 0:
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _client(self, creader, cwriter):
        try:
            ureader, uwriter = await asyncio.open_connection(self.host, self.port)
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(self._pump(creader, uwriter, False),
                             self._pump(ureader, cwriter, True))


def via_proxy(uri, port):
    """uri with its host:port replaced by 127.0.0.1:port."""
    u = urllib.parse.urlsplit(uri)
    return urllib.parse.urlunsplit(u._replace(netloc=f"127.0.0.1:{port}"))


def slow_store_gateway(stack, index, test, env_extra):
    """A DelayProxy in front of the stack's MongoDB (delay 0 until the test sets one) and a
    gateway of the test's own (chat.deliver partition index) that reaches MongoDB through it,
    its log in the stack's logs directory named after test; returns (proxy, gateway)."""
    mongo = urllib.parse.urlsplit(stack["CHAT_MONGO_URI"])
    proxy = DelayProxy(mongo.hostname, mongo.port)
    gw = test_gateway(stack, index, test, dict(
        env_extra, CHAT_MONGO_URI=via_proxy(stack["CHAT_MONGO_URI"], proxy.listen_port)))
    return proxy, gw
