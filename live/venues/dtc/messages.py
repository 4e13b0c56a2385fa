"""The DTC messages the adapter sends, built as JSON-ready dicts (field names as in DTCProtocol.h)."""

from __future__ import annotations

import time

from live.venues.dtc.constants import (
    PROTOCOL_VERSION,
    Encoding,
    OpenClose,
    OrderType,
    PartialFillHandling,
    RequestAction,
    TimeInForce,
)
from live.venues.dtc.constants import MessageType as MT
from live.venues.dtc.convert import buysell_of_side

__all__ = [
    "cancel_order",
    "encoding_request",
    "heartbeat",
    "logoff",
    "logon_request",
    "market_data_request",
    "market_depth_request",
    "market_order",
    "oco_bracket",
]


def logon_request(username: str, password: str, heartbeat_s: int, client_name: str, trade_account: str) -> dict:
    return {"Type": MT.LOGON_REQUEST, "ProtocolVersion": PROTOCOL_VERSION, "Username": username,
            "Password": password, "HeartbeatIntervalInSeconds": heartbeat_s, "ClientName": client_name,
            "TradeAccount": trade_account}


def encoding_request() -> dict:
    return {"Type": MT.ENCODING_REQUEST, "ProtocolVersion": PROTOCOL_VERSION, "Encoding": Encoding.JSON_ENCODING}


def heartbeat() -> dict:
    return {"Type": MT.HEARTBEAT, "NumDroppedMessages": 0, "CurrentDateTime": int(time.time())}


def logoff(reason: str) -> dict:
    return {"Type": MT.LOGOFF, "Reason": reason, "DoNotReconnect": 1}


def market_data_request(symbol_id: int, symbol: str, exchange: str) -> dict:
    return {"Type": MT.MARKET_DATA_REQUEST, "RequestAction": RequestAction.SUBSCRIBE, "SymbolID": symbol_id,
            "Symbol": symbol, "Exchange": exchange}


def market_depth_request(symbol_id: int, symbol: str, exchange: str, levels: int) -> dict:
    return {"Type": MT.MARKET_DEPTH_REQUEST, "RequestAction": RequestAction.SUBSCRIBE, "SymbolID": symbol_id,
            "Symbol": symbol, "Exchange": exchange, "NumLevels": levels}


def market_order(symbol: str, exchange: str, account: str, client_id: str, side: int, qty: int, opening: bool,
                 text: str = "") -> dict:
    """SUBMIT_NEW_SINGLE_ORDER: a day market order (an entry opens, anything else closes)."""
    return {"Type": MT.SUBMIT_NEW_SINGLE_ORDER, "Symbol": symbol, "Exchange": exchange, "TradeAccount": account,
            "ClientOrderID": client_id, "OrderType": OrderType.ORDER_TYPE_MARKET, "BuySell": buysell_of_side(side),
            "Quantity": qty, "TimeInForce": TimeInForce.TIF_DAY, "IsAutomatedOrder": 1,
            "OpenOrClose": OpenClose.TRADE_OPEN if opening else OpenClose.TRADE_CLOSE, "FreeFormText": text[:47]}


def oco_bracket(symbol: str, exchange: str, account: str, stop_id: str, target_id: str, side: int, qty: int,
                stop: float, target: float) -> dict:
    """SUBMIT_NEW_OCO_ORDER: leg 1 a stop at ``stop``, leg 2 a limit at ``target``, both ``side`` (closing), good
    till cancelled; a partial fill of one reduces the other."""
    bs = buysell_of_side(side)
    return {"Type": MT.SUBMIT_NEW_OCO_ORDER, "Symbol": symbol, "Exchange": exchange, "TradeAccount": account,
            "ClientOrderID_1": stop_id, "OrderType_1": OrderType.ORDER_TYPE_STOP, "BuySell_1": bs,
            "Price1_1": stop, "Quantity_1": qty,
            "ClientOrderID_2": target_id, "OrderType_2": OrderType.ORDER_TYPE_LIMIT, "BuySell_2": bs,
            "Price1_2": target, "Quantity_2": qty,
            "TimeInForce": TimeInForce.TIF_GOOD_TILL_CANCELED, "IsAutomatedOrder": 1,
            "OpenOrClose": OpenClose.TRADE_CLOSE,
            "PartialFillHandling": PartialFillHandling.PARTIAL_FILL_HANDLING_REDUCE_QUANTITY}


def cancel_order(server_id: str, client_id: str) -> dict:
    return {"Type": MT.CANCEL_ORDER, "ServerOrderID": server_id, "ClientOrderID": client_id}
