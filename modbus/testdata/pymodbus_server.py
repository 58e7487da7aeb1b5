#!/usr/bin/python3
"""A pymodbus (3.0.x) Modbus TCP server for the modbus package's tests.

Usage: pymodbus_server.py REGISTERS.json

The JSON file maps unit ids to register blocks:
  {"85": {"holding": {"33": 65535, "34": 64302}, "input": {}}, "100": {...}}
Addresses are protocol addresses (zero_mode), so "33" is what a client
asks for as register 33. Registers not listed do not exist: pymodbus answers
"illegal data address", as a strict device does.

The server binds 127.0.0.1 on a free port and prints "PORT <n>" on stdout
once it accepts connections; it runs until killed.
"""

import asyncio
import json
import sys

from pymodbus.datastore import (
    ModbusServerContext,
    ModbusSlaveContext,
    ModbusSparseDataBlock,
)
from pymodbus.server import StartAsyncTcpServer


def block(regs):
    values = {int(addr): int(v) for addr, v in regs.items()}
    if not values:
        # An empty sparse block cannot be built; one far register stands
        # in for "nothing here".
        values = {65535: 0}
    return ModbusSparseDataBlock(values)


def context(spec):
    slaves = {}
    for unit, tables in spec.items():
        slaves[int(unit)] = ModbusSlaveContext(
            hr=block(tables.get("holding", {})),
            ir=block(tables.get("input", {})),
            zero_mode=True,
        )
    return ModbusServerContext(slaves=slaves, single=False)


async def main(path):
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    server = await StartAsyncTcpServer(
        context=context(spec), address=("127.0.0.1", 0), defer_start=True
    )
    task = asyncio.create_task(server.serve_forever())
    await server.serving
    port = server.server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
