#!/usr/bin/env node
// The keeper's DLOB helper: Drift's own order-book code (@drift-labs/sdk) behind a JSON-lines pipe.
//
// Python (keeper/venues/drift/dlob.py) owns the account state and sends raw User accounts; this
// process keeps one SDK DLOB per market, rebuilt when its accounts change, and answers book
// requests. It never touches the network.
//
// Protocol: one JSON object per line each way. Every request has an `id`, echoed in its reply.
// Integers go both ways as decimal strings (BN's toJSON is hex; JS numbers stop at 2**53); prices
// are 1e6, perp sizes 1e9, spot sizes the token's decimals. A failed request gets
// {id, error: "one line"} and the process carries on.
//   {op: "ping"}                                   -> {ok, sdk, accounts, orders, builds}
//   {op: "upsert", accounts: [{pubkey, data}]}     -> {ok, accounts, rejected: [{pubkey, error}]}
//       data: a User account, base64. Unreadable accounts are rejected, and their old orders dropped.
//   {op: "remove", pubkeys: [pubkey]}              -> {ok, removed, accounts}
//   {op: "reset"}                                  -> {ok}
//   {op: "book" | "l2" | "l3", market_type: "perp"|"spot", market_index, slot, oracle_price,
//    oracle_slot?, oracle_conf?, depth? (20), l3_depth? (all),
//    perp_market? (PerpMarket account, base64: adds vAMM levels), now? (unix s), vamm_levels? (depth)}
//       -> {ok, market_type, market_index, slot,
//           bids, asks: [{price, size, vamm?}] best first (l2, book),
//           vamm_bid, vamm_ask (with perp_market),
//           l3: {columns, bids, asks} (l3, book): resting orders best first, one array per order in
//               `columns` order: price, size (unfilled), fillable (what L2 counts: reduce-only
//               orders clamped to the position), user, order_id, oracle_price_offset, post_only,
//               reduce_only, slot, max_ts}
'use strict';

const crypto = require('crypto');
const readline = require('readline');

// stdout carries the protocol and nothing else, but the SDK prints with console.log (e.g. "price is
// zero" from standardizePrice): send all console output to stderr.
for (const name of ['log', 'info', 'debug', 'warn', 'trace']) console[name] = console.error;

// Straight to lib/node: the package root loads the whole client too (~1.1 s here, against ~0.3 s).
const SDK = '@drift-labs/sdk/lib/node/';
const { DLOB } = require(SDK + 'dlob/DLOB');
// The SDK's own (nested) anchor, already loaded by DLOB: BNs must come from the same bn.js it uses.
const { BN } = require(require.resolve('@coral-xyz/anchor', { paths: [require.resolve(SDK + 'dlob/DLOB')] }));
const { getVammL2Generator, MAJORS_TOP_OF_BOOK_QUOTE_AMOUNTS, DEFAULT_TOP_OF_BOOK_QUOTE_AMOUNTS } = require(SDK + 'dlob/orderBookLevels');
const { decodeUser } = require(SDK + 'decode/user');
const { CustomBorshAccountsCoder } = require(SDK + 'decode/customCoder');
const { calculateOrderBaseAssetAmount, isRestingLimitOrder, mustBeTriggered, isTriggered } = require(SDK + 'math/orders');
const { isUserProtectedMaker } = require(SDK + 'math/userStatus');
const { MarketType, isVariant, isOneOfVariant } = require(SDK + 'types');
const SDK_VERSION = require('@drift-labs/sdk/package.json').version;

const USER_SIZE = 4376;
// What of a User account the book depends on (same layout decodeUser reads): perp positions (the
// reduce-only clamp) and orders, then the status byte (protected maker). Accounts change often
// elsewhere (collateral, funding, last active slot) and those changes must not cost a rebuild.
const BOOK_BYTES = [[424, 4264], [4348, 4349]];
const discriminator = (name) => crypto.createHash('sha256').update(`account:${name}`).digest().subarray(0, 8);
const USER_DISCRIMINATOR = discriminator('User');
const PERP_MARKET_DISCRIMINATOR = discriminator('PerpMarket');
// The DLOB drops other order types on insert; dropping them here keeps them out of the per-market index.
const SUPPORTED_ORDER_TYPES = ['market', 'limit', 'triggerMarket', 'triggerLimit', 'oracle'];
const PUBKEY = /^[1-9A-HJ-NP-Za-km-z]{32,44}$/;
const INTEGER = /^-?[0-9]{1,40}$/;
const ZERO = new BN(0);

let perpMarketCoder; // the IDL coder costs ~15 ms to build, and only vAMM requests need it
let builds = 0; // DLOB (re)builds, reported by ping: upserts that change no order should not add any

// pubkey -> {digest of BOOK_BYTES, entries: [{order, user, baseAmount, protectedMaker, market}]}
const users = new Map();
// "perp:0" -> {users: Set<pubkey>, dlob, slot (the latest it was asked for), perpMarket: {b64, account}}
const markets = new Map();

class BadRequest extends Error {}

function marketKey(marketType, marketIndex) {
  return `${marketType}:${marketIndex}`;
}

function market(key) {
  let m = markets.get(key);
  if (!m) {
    m = { users: new Set(), dlob: null, slot: null, perpMarket: null };
    markets.set(key, m);
  }
  return m;
}

// The same clamp OrderSubscriber.getDLOB applies, quirks included (it consults perp positions for
// spot orders too), so our book matches what Drift's own services show.
function userEntries(pubkey, account) {
  const protectedMaker = isUserProtectedMaker(account);
  const entries = [];
  for (const order of account.orders) {
    if (!isVariant(order.status, 'open')) continue;
    for (const field of ['orderType', 'marketType', 'direction', 'triggerCondition']) {
      if (!order[field]) throw new BadRequest(`order ${order.orderId} has an unknown ${field}`);
    }
    if (!isOneOfVariant(order.orderType, SUPPORTED_ORDER_TYPES)) continue;
    // A limit order with neither price nor offset only ever takes; once its auction ends the SDK
    // prices it `undefined`, which breaks every book request for the market.
    if (isOneOfVariant(order.orderType, ['limit', 'triggerLimit']) && order.price.isZero() && order.oraclePriceOffset === 0) continue;
    let baseAmount = order.baseAssetAmount;
    if (order.reduceOnly) {
      const position = account.perpPositions.find((p) => p.marketIndex === order.marketIndex && p.openOrders > 0);
      baseAmount = calculateOrderBaseAssetAmount(order, position ? position.baseAssetAmount : ZERO);
    }
    const marketType = isVariant(order.marketType, 'perp') ? 'perp' : 'spot';
    entries.push({ order, user: pubkey, baseAmount, protectedMaker, market: marketKey(marketType, order.marketIndex) });
  }
  return entries;
}

function decodeAccount(item) {
  if (!item || typeof item !== 'object') throw new BadRequest('each account is {pubkey, data}');
  const { pubkey, data } = item;
  if (typeof pubkey !== 'string' || !PUBKEY.test(pubkey)) throw new BadRequest('pubkey is not base58');
  if (typeof data !== 'string') throw new BadRequest(`account ${pubkey}: data is not a base64 string`);
  const bytes = Buffer.from(data, 'base64');
  if (bytes.length !== USER_SIZE) throw new BadRequest(`account ${pubkey}: ${bytes.length} bytes, a User account has ${USER_SIZE}`);
  if (!bytes.subarray(0, 8).equals(USER_DISCRIMINATOR)) throw new BadRequest(`account ${pubkey}: not a User account (discriminator)`);
  const hash = crypto.createHash('sha1');
  for (const [start, end] of BOOK_BYTES) hash.update(bytes.subarray(start, end));
  const digest = hash.digest('base64');
  const known = users.get(pubkey);
  if (known && known.digest === digest) return known;
  return { digest, entries: userEntries(pubkey, decodeUser(bytes)) };
}

function forget(pubkey) {
  const old = users.get(pubkey);
  if (!old) return false;
  for (const key of new Set(old.entries.map((e) => e.market))) {
    const m = markets.get(key);
    m.users.delete(pubkey);
    m.dlob = null;
  }
  users.delete(pubkey);
  return true;
}

function upsert(req) {
  if (!Array.isArray(req.accounts)) throw new BadRequest('upsert needs accounts: [{pubkey, data}]');
  // A bad account is reported and skipped, not fatal: one odd account must not blank the whole book.
  const rejected = [];
  for (const item of req.accounts) {
    let user;
    try {
      user = decodeAccount(item);
    } catch (e) {
      const pubkey = item && typeof item.pubkey === 'string' ? item.pubkey.slice(0, 64) : null;
      // The account changed into something we cannot read: its old orders are stale, drop them.
      if (pubkey !== null) forget(pubkey);
      rejected.push({ pubkey, error: oneLine(e) });
      continue;
    }
    if (users.get(item.pubkey) === user) continue; // nothing the book depends on changed
    forget(item.pubkey);
    users.set(item.pubkey, user);
    for (const e of user.entries) {
      const m = market(e.market);
      m.users.add(item.pubkey);
      m.dlob = null;
    }
  }
  return { ok: true, accounts: String(users.size), rejected };
}

function remove(req) {
  if (!Array.isArray(req.pubkeys)) throw new BadRequest('remove needs pubkeys: [string]');
  let removed = 0;
  for (const pubkey of req.pubkeys) {
    if (typeof pubkey === 'string' && forget(pubkey)) removed += 1;
  }
  return { ok: true, removed: String(removed), accounts: String(users.size) };
}

// Decimal text of a BN, without BN's slow base-10 conversion in the common (< 2**53) case.
const dec = (bn) => (bn.bitLength() <= 53 ? String(bn.toNumber()) : bn.toString(10));
// Sort keys only steer insertion speed, never the book, so clamping huge values is harmless.
const num = (bn) => (bn.bitLength() <= 53 ? bn.toNumber() : bn.isNeg() ? -Number.MAX_SAFE_INTEGER : Number.MAX_SAFE_INTEGER);

// The list NodeList.insert puts an order in, and its rank there: lower ranks are worse (further
// from the head). See dlob/DLOB.js getListForOnChainOrder and dlob/DLOBNode.js sort values.
function insertionKey(order, slot) {
  const side = isVariant(order.direction, 'long') ? 'bid' : 'ask';
  const ascending = (list, value) => ({ list, rank: -num(value) });
  const descending = (list, value) => ({ list, rank: num(value) });
  if (mustBeTriggered(order) && !isTriggered(order)) {
    return isVariant(order.triggerCondition, 'above') ? ascending('trigger-above', order.triggerPrice) : descending('trigger-below', order.triggerPrice);
  }
  if (isOneOfVariant(order.orderType, ['market', 'triggerMarket', 'oracle'])) return ascending(`market-${side}`, order.slot);
  const byPrice = side === 'ask' ? ascending : descending;
  if (order.oraclePriceOffset !== 0) return byPrice(`floating-${side}`, new BN(order.oraclePriceOffset));
  if (isRestingLimitOrder(order, slot)) return byPrice(`resting-${side}`, order.price);
  return ascending(`taking-${side}`, order.slot);
}

// NodeList.insert walks from the head, so inserting each list worst-first (ties: newest first)
// makes every insert a prepend: ~13 ms instead of ~190 ms for 5,000 orders.
function buildDlob(key, m, slot) {
  const entries = [];
  for (const pubkey of m.users) {
    for (const e of users.get(pubkey).entries) {
      if (e.market === key) entries.push({ e, ...insertionKey(e.order, slot), age: -num(e.order.slot) });
    }
  }
  entries.sort((a, b) => (a.list !== b.list ? (a.list < b.list ? -1 : 1) : a.rank - b.rank || a.age - b.age));
  const dlob = new DLOB();
  const slotNumber = slot.toNumber();
  for (const { e } of entries) dlob.insertOrder(e.order, e.user, slotNumber, e.protectedMaker, e.baseAmount);
  m.dlob = dlob;
  m.slot = slot;
  builds += 1;
}

function integer(value, name, { min = null, optional = false, fallback = null } = {}) {
  if (value === undefined || value === null) {
    if (optional) return fallback;
    throw new BadRequest(`${name} is required`);
  }
  let n;
  if (typeof value === 'string' && INTEGER.test(value)) n = new BN(value, 10);
  else if (typeof value === 'number' && Number.isSafeInteger(value)) n = new BN(value);
  else throw new BadRequest(`${name} must be an integer (a decimal string)`);
  if (min !== null && n.ltn(min)) throw new BadRequest(`${name} must be >= ${min}`);
  return n;
}

function decodePerpMarket(m, b64, marketIndex) {
  if (m.perpMarket && m.perpMarket.b64 === b64) return m.perpMarket.account;
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.length < 8 || !bytes.subarray(0, 8).equals(PERP_MARKET_DISCRIMINATOR)) throw new BadRequest('perp_market is not a PerpMarket account');
  if (!perpMarketCoder) perpMarketCoder = new CustomBorshAccountsCoder(require(SDK + 'idl/drift.json'));
  let account;
  try {
    account = perpMarketCoder.decode('PerpMarket', bytes);
  } catch (e) {
    throw new BadRequest(`perp_market does not decode: ${oneLine(e)}`);
  }
  if (account.marketIndex !== marketIndex) throw new BadRequest(`perp_market is market ${account.marketIndex}, not ${marketIndex}`);
  m.perpMarket = { b64, account };
  return account;
}

function levels(l2Levels) {
  return l2Levels.map((l) => {
    const level = { price: dec(l.price), size: dec(l.size) };
    if (l.sources.vamm) level.vamm = dec(l.sources.vamm);
    return level;
  });
}

// L3 rows are arrays, not objects: at 5,000 orders the repeated keys were a third of the reply
// and of its parse time on the Python side.
const L3_COLUMNS = ['price', 'size', 'fillable', 'user', 'order_id', 'oracle_price_offset', 'post_only', 'reduce_only', 'slot', 'max_ts'];

function l3Rows(nodes, oracle, slot, limit) {
  const rows = [];
  for (const node of nodes) {
    if (rows.length === limit) break;
    const o = node.order;
    const fillable = node.baseAssetAmount.sub(o.baseAssetAmountFilled);
    rows.push([
      dec(node.getPrice(oracle, slot)),
      // Unclamped like the SDK's getL3; `fillable` is what L2 counts (reduce-only clamp applied).
      dec(o.baseAssetAmount.sub(o.baseAssetAmountFilled)),
      fillable.isNeg() ? '0' : dec(fillable),
      node.userAccount,
      String(o.orderId),
      String(o.oraclePriceOffset),
      o.postOnly,
      o.reduceOnly,
      dec(o.slot),
      dec(o.maxTs),
    ]);
  }
  return rows;
}

function book(req, parts) {
  if (req.market_type !== 'perp' && req.market_type !== 'spot') throw new BadRequest('market_type must be "perp" or "spot"');
  const marketIndex = integer(req.market_index, 'market_index', { min: 0 });
  if (marketIndex.gtn(65535)) throw new BadRequest('market_index must fit a u16');
  const index = marketIndex.toNumber();
  const slot = integer(req.slot, 'slot', { min: 0 });
  if (slot.bitLength() > 52) throw new BadRequest('slot is out of range');
  const oracle = {
    price: integer(req.oracle_price, 'oracle_price', { min: 1 }),
    slot: integer(req.oracle_slot, 'oracle_slot', { min: 0, optional: true, fallback: slot }),
    confidence: integer(req.oracle_conf, 'oracle_conf', { min: 0, optional: true, fallback: ZERO }),
    hasSufficientNumberOfDataPoints: true,
  };
  const depth = integer(req.depth, 'depth', { min: 1, optional: true, fallback: new BN(20) }).toNumber();
  const l3Depth = integer(req.l3_depth, 'l3_depth', { min: 0, optional: true, fallback: new BN(-1) }).toNumber();
  const key = marketKey(req.market_type, index);
  const marketType = req.market_type === 'perp' ? MarketType.PERP : MarketType.SPOT;
  const m = market(key);

  let vamm = null;
  if (req.perp_market !== undefined && req.perp_market !== null) {
    if (req.market_type !== 'perp') throw new BadRequest('perp_market is for perp markets only');
    if (typeof req.perp_market !== 'string') throw new BadRequest('perp_market must be base64');
    const account = decodePerpMarket(m, req.perp_market, index);
    const now = integer(req.now, 'now', { min: 0, optional: true, fallback: new BN(Math.floor(Date.now() / 1000)) });
    vamm = getVammL2Generator({
      marketAccount: account,
      mmOraclePriceData: { ...oracle, isMMOracleActive: !account.amm.mmOracleSlot.isZero() },
      numOrders: integer(req.vamm_levels, 'vamm_levels', { min: 1, optional: true, fallback: new BN(depth) }).toNumber(),
      // What DLOBSubscriber.getL2 passes for includeVamm.
      topOfBookQuoteAmounts: index < 3 ? MAJORS_TOP_OF_BOOK_QUOTE_AMOUNTS : DEFAULT_TOP_OF_BOOK_QUOTE_AMOUNTS,
      now,
      latestSlot: slot,
    });
  }

  // Orders leave the taking list as their auctions end, and never go back: a request for an
  // older slot than the book has seen needs a fresh build.
  if (!m.dlob || slot.lt(m.slot)) buildDlob(key, m, slot);
  m.slot = slot;
  const slotNumber = slot.toNumber();
  const reply = { ok: true, market_type: req.market_type, market_index: String(index), slot: dec(slot) };
  if (parts.l2) {
    const l2 = m.dlob.getL2({ marketIndex: index, marketType, slot: slotNumber, oraclePriceData: oracle, depth, fallbackL2Generators: vamm ? [vamm] : [] });
    reply.bids = levels(l2.bids);
    reply.asks = levels(l2.asks);
    if (vamm) {
      const bestBid = vamm.getL2Bids().next();
      const bestAsk = vamm.getL2Asks().next();
      reply.vamm_bid = bestBid.done ? null : dec(bestBid.value.price);
      reply.vamm_ask = bestAsk.done ? null : dec(bestAsk.value.price);
    }
  }
  if (parts.l3) {
    reply.l3 = {
      columns: L3_COLUMNS,
      bids: l3Rows(m.dlob.getRestingLimitBids(index, slotNumber, marketType, oracle), oracle, slotNumber, l3Depth),
      asks: l3Rows(m.dlob.getRestingLimitAsks(index, slotNumber, marketType, oracle), oracle, slotNumber, l3Depth),
    };
  }
  return reply;
}

function reset() {
  users.clear();
  markets.clear();
  return { ok: true };
}

function ping() {
  let orders = 0;
  for (const user of users.values()) orders += user.entries.length;
  return { ok: true, sdk: SDK_VERSION, accounts: String(users.size), orders: String(orders), builds: String(builds) };
}

const OPS = {
  ping,
  reset,
  upsert,
  remove,
  book: (req) => book(req, { l2: true, l3: true }),
  l2: (req) => book(req, { l2: true, l3: false }),
  l3: (req) => book(req, { l2: false, l3: true }),
};

function oneLine(e) {
  const text = e instanceof Error ? `${e instanceof BadRequest ? '' : e.name + ': '}${e.message}` : String(e);
  return text.replace(/\s+/g, ' ').trim().slice(0, 300) || 'unknown error';
}

function handle(line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    // Not the parser's message: it quotes the line, which may hold account data.
    const at = /position (\d+)/.exec(String(e && e.message));
    return { id: null, error: `request is not JSON${at ? ` (at character ${at[1]})` : ''}` };
  }
  if (!req || typeof req !== 'object' || Array.isArray(req)) return { id: null, error: 'request must be a JSON object' };
  const id = req.id === undefined ? null : req.id;
  const op = Object.prototype.hasOwnProperty.call(OPS, req.op) ? OPS[req.op] : null;
  if (!op) return { id, error: typeof req.op === 'string' ? `unknown op ${JSON.stringify(req.op.slice(0, 40))}` : 'op must be a string' };
  try {
    return { id, ...op(req) };
  } catch (e) {
    if (!(e instanceof BadRequest)) process.stderr.write(`dlob_helper: ${req.op} failed: ${e && e.stack ? e.stack.split('\n').slice(0, 4).join(' | ') : oneLine(e)}\n`);
    return { id, error: oneLine(e) };
  }
}

function main() {
  process.stdout.on('error', () => process.exit(0)); // the reader went away: nothing left to serve
  const input = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  input.on('line', (line) => {
    if (line.trim() === '') return;
    process.stdout.write(JSON.stringify(handle(line)) + '\n');
  });
  input.on('close', () => process.exit(0));
}

main();
