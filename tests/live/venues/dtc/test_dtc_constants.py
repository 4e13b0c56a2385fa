"""The DTC constants the adapter uses, checked against an independent table transcribed from the published header:
DTCProtocol.h, ``DTC::CURRENT_VERSION = 8`` (the DTC Protocol's public-domain header, as in github.com/cloudostrich/
dtcpp at 9be098dd, 2020-06-10, the version Sierra Chart ships in its /DTC folder). With ``$NAVALE_DTC_HEADER`` naming
a DTCProtocol.h file, every constant is also checked against that file's text."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from live.venues.dtc import constants as C

# (class in our module, name, value in the header): transcribed by hand from DTCProtocol.h, not from constants.py
HEADER = {
    "MessageType": {
        "LOGON_REQUEST": 1, "LOGON_RESPONSE": 2, "HEARTBEAT": 3, "LOGOFF": 5, "ENCODING_REQUEST": 6,
        "ENCODING_RESPONSE": 7, "MARKET_DATA_FEED_STATUS": 100, "MARKET_DATA_REQUEST": 101,
        "MARKET_DEPTH_REQUEST": 102, "MARKET_DATA_REJECT": 103, "MARKET_DATA_SNAPSHOT": 104,
        "MARKET_DEPTH_UPDATE_LEVEL": 106, "MARKET_DATA_UPDATE_TRADE": 107, "MARKET_DATA_UPDATE_BID_ASK": 108,
        "MARKET_DATA_UPDATE_TRADE_COMPACT": 112, "MARKET_DATA_UPDATE_BID_ASK_COMPACT": 117,
        "MARKET_DEPTH_REJECT": 121, "MARKET_DEPTH_SNAPSHOT_LEVEL": 122,
        "MARKET_DATA_UPDATE_TRADE_WITH_UNBUNDLED_INDICATOR": 137,
        "MARKET_DATA_UPDATE_BID_ASK_FLOAT_WITH_MILLISECONDS": 144, "SUBMIT_NEW_OCO_ORDER": 201, "CANCEL_ORDER": 203,
        "SUBMIT_NEW_SINGLE_ORDER": 208, "OPEN_ORDERS_REQUEST": 300, "ORDER_UPDATE": 301, "OPEN_ORDERS_REJECT": 302,
        "HISTORICAL_ORDER_FILLS_REQUEST": 303, "HISTORICAL_ORDER_FILL_RESPONSE": 304,
        "CURRENT_POSITIONS_REQUEST": 305, "POSITION_UPDATE": 306, "CURRENT_POSITIONS_REJECT": 307,
        "HISTORICAL_ORDER_FILLS_REJECT": 308, "TRADE_ACCOUNTS_REQUEST": 400, "TRADE_ACCOUNT_RESPONSE": 401,
        "USER_MESSAGE": 700, "GENERAL_LOG_MESSAGE": 701,
    },
    "LogonStatus": {"LOGON_SUCCESS": 1, "LOGON_ERROR": 2, "LOGON_ERROR_NO_RECONNECT": 3,
                    "LOGON_RECONNECT_NEW_ADDRESS": 4},
    "Encoding": {"BINARY_ENCODING": 0, "BINARY_WITH_VARIABLE_LENGTH_STRINGS": 1, "JSON_ENCODING": 2,
                 "JSON_COMPACT_ENCODING": 3, "PROTOCOL_BUFFERS": 4},
    "TradeMode": {"TRADE_MODE_UNSET": 0, "TRADE_MODE_DEMO": 1, "TRADE_MODE_SIMULATED": 2, "TRADE_MODE_LIVE": 3},
    "RequestAction": {"SUBSCRIBE": 1, "UNSUBSCRIBE": 2, "SNAPSHOT": 3},
    "OrderStatus": {"ORDER_STATUS_UNSPECIFIED": 0, "ORDER_STATUS_ORDER_SENT": 1, "ORDER_STATUS_PENDING_OPEN": 2,
                    "ORDER_STATUS_PENDING_CHILD": 3, "ORDER_STATUS_OPEN": 4, "ORDER_STATUS_PENDING_CANCEL_REPLACE": 5,
                    "ORDER_STATUS_PENDING_CANCEL": 6, "ORDER_STATUS_FILLED": 7, "ORDER_STATUS_CANCELED": 8,
                    "ORDER_STATUS_REJECTED": 9, "ORDER_STATUS_PARTIALLY_FILLED": 10},
    "OrderUpdateReason": {"ORDER_UPDATE_REASON_UNSET": 0, "OPEN_ORDERS_REQUEST_RESPONSE": 1, "NEW_ORDER_ACCEPTED": 2,
                          "GENERAL_ORDER_UPDATE": 3, "ORDER_FILLED": 4, "ORDER_FILLED_PARTIALLY": 5,
                          "ORDER_CANCELED": 6, "ORDER_CANCEL_REPLACE_COMPLETE": 7, "NEW_ORDER_REJECTED": 8,
                          "ORDER_CANCEL_REJECTED": 9, "ORDER_CANCEL_REPLACE_REJECTED": 10},
    "AtBidOrAsk": {"BID_ASK_UNSET": 0, "AT_BID": 1, "AT_ASK": 2},
    "DepthUpdateType": {"MARKET_DEPTH_INSERT_UPDATE_LEVEL": 1, "MARKET_DEPTH_DELETE_LEVEL": 2},
    "OrderType": {"ORDER_TYPE_MARKET": 1, "ORDER_TYPE_LIMIT": 2, "ORDER_TYPE_STOP": 3},
    "TimeInForce": {"TIF_DAY": 1, "TIF_GOOD_TILL_CANCELED": 2},
    "BuySell": {"BUY": 1, "SELL": 2},
    "OpenClose": {"TRADE_UNSET": 0, "TRADE_OPEN": 1, "TRADE_CLOSE": 2},
    "PartialFillHandling": {"PARTIAL_FILL_UNSET": 0, "PARTIAL_FILL_HANDLING_REDUCE_QUANTITY": 1,
                            "PARTIAL_FILL_HANDLING_IMMEDIATE_CANCEL": 2},
}
CLASSES = sorted(HEADER)


def test_protocol_version_and_lengths():
    assert C.PROTOCOL_VERSION == 8
    assert C.ORDER_ID_LENGTH == 32


@pytest.mark.parametrize("cls", CLASSES)
def test_every_constant_matches_the_transcribed_header(cls):
    ours = C.names(getattr(C, cls))
    assert ours == HEADER[cls], f"{cls}: ours {ours} != header {HEADER[cls]}"


def test_no_two_message_types_share_a_number():
    mt = C.names(C.MessageType)
    by_value: dict[int, list[str]] = {}
    for k, v in mt.items():
        by_value.setdefault(v, []).append(k)
    assert not {v: ks for v, ks in by_value.items() if len(ks) > 1}


@pytest.mark.parametrize("cls", CLASSES)
def test_no_two_enum_names_share_a_number(cls):
    vals = list(C.names(getattr(C, cls)).values())
    assert len(vals) == len(set(vals)), cls


def _header_table(text: str) -> dict[str, int]:
    """NAME -> value of every ``const ... NAME = N;`` and every enum member ``NAME = N`` in the header text."""
    text = re.sub(r"//[^\n]*", "", text)
    out: dict[str, int] = {}
    for m in re.finditer(r"\b([A-Z][A-Z0-9_]*)\s*=\s*(-?\d+)\s*[,;}\n]", text):
        out.setdefault(m.group(1), int(m.group(2)))
    return out


def test_against_the_header_file_named_by_NAVALE_DTC_HEADER():
    path = os.environ.get("NAVALE_DTC_HEADER")
    if not path:
        pytest.skip("NAVALE_DTC_HEADER is not set (point it at a DTCProtocol.h to check every constant against it)")
    p = Path(path)
    if not p.is_file():
        pytest.skip(f"NAVALE_DTC_HEADER={path}: no such file")
    table = _header_table(p.read_text(errors="replace"))
    assert table.get("CURRENT_VERSION") == C.PROTOCOL_VERSION
    assert table.get("ORDER_ID_LENGTH") == C.ORDER_ID_LENGTH
    wrong = {}
    for cls in CLASSES:
        for name, v in C.names(getattr(C, cls)).items():
            if table.get(name) != v:
                wrong[f"{cls}.{name}"] = (v, table.get(name))
    assert not wrong, f"constants differing from {p} (ours, header): {wrong}"
