#!/usr/bin/env python3
# usage: loopback.py [MEGABYTES] [ROUNDS]
# The time a plain TCP socket on loopback takes to carry one payload of a wide model's size (9.5 MB by default) from
# one thread to another and back a one-byte answer: the floor under what a data-parallel step's messages cost on this
# machine, to set beside the "on the way" of `rnnf train --workers` (docs/distributed-figures.md).
import socket, sys, threading, time

size = int(float(sys.argv[1]) * 1_000_000) if len(sys.argv) > 1 else 9_500_000
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
payload = b"x" * size
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(1)

def receive():
    connection, _ = server.accept()
    buffer = bytearray(size)
    for _ in range(rounds):
        view, got = memoryview(buffer), 0
        while got < size:
            got += connection.recv_into(view[got:])
        connection.sendall(b"k")

thread = threading.Thread(target=receive)
thread.start()
client = socket.socket()
client.connect(("127.0.0.1", server.getsockname()[1]))
start = time.time()
for _ in range(rounds):
    client.sendall(payload)
    client.recv(1)
elapsed = time.time() - start
thread.join()
print(f"{elapsed / rounds * 1000:.1f} ms per {size / 1e6:.1f} MB, {size * rounds / elapsed / 1e9:.2f} GB/s")
