package state

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// prefix keeps mf's keys apart from whatever else shares the database.
const prefix = "mf:"

type redisStore struct {
	c *redis.Client
}

// OpenRedis connects to the server a redis://[user:password@]host:port/db,
// rediss:// (TLS) or unix:///path?db=N URL names. Nothing is sent until
// the first operation.
func OpenRedis(url string, timeout time.Duration) (Store, error) {
	redis.SetLogger(quiet{})
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = timeout, timeout, timeout
	o.MaxRetries = 1
	o.PoolSize = 4
	o.DisableIdentity = true // CLIENT SETINFO is one more round trip per process
	return &redisStore{redis.NewClient(o)}, nil
}

func (s *redisStore) Close() error { return s.c.Close() }

// quiet silences the client's own log lines: its errors come back from
// the calls and are reported there, in mf's format.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// wrap gives a timeout the same error as a lock wait in the directory.
func wrap(err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return err
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("state: redis: %w: %v", ErrTimeout, err)
	}
	return fmt.Errorf("state: redis: %w", err)
}

// The scripts are made at their first use (redis.NewScript hashes its
// text): a command that never speaks to Redis makes none as it starts.

// addScript sets the expiry only when INCRBY created the key, as the
// directory backend does.
var addScript = sync.OnceValue(func() *redis.Script {
	return redis.NewScript(`
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 and redis.call('PTTL', KEYS[1]) == -1 then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return v`)
})

func (s *redisStore) Add(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error) {
	v, err := addScript().Run(ctx, s.c, []string{prefix + key}, n, ttl.Milliseconds()).Int64()
	if err == nil && Family(key) != "" {
		err = s.index(ctx, key)
	}
	return v, wrap(err)
}

// setScript sets a key and, for a key of a family, its entry in the
// family's index (a sorted set of keys scored by expiry: ms, server
// clock, +inf for none) and the family's version (Version).
var setScript = sync.OnceValue(func() *redis.Script {
	return redis.NewScript(`
local ok
if ARGV[3] == "1" then
	if tonumber(ARGV[2]) > 0 then
		ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
	else
		ok = redis.call('SET', KEYS[1], ARGV[1], 'NX')
	end
else
	if tonumber(ARGV[2]) > 0 then
		ok = redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
	else
		ok = redis.call('SET', KEYS[1], ARGV[1])
	end
end
if ok and KEYS[2] then
	local t = redis.call('TIME')
	local score = '+inf'
	if tonumber(ARGV[2]) > 0 then
		score = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
	end
	redis.call('ZADD', KEYS[2], score, KEYS[1])
	redis.call('INCR', KEYS[3])
end
if ok then return 1 end
return 0`)
})

func (s *redisStore) set(ctx context.Context, key string, val []byte, ttl time.Duration, nx bool) (bool, error) {
	keys := []string{prefix + key}
	if f := Family(key); f != "" {
		keys = append(keys, indexKey(f), versionKey(f))
	}
	flag := "0"
	if nx {
		flag = "1"
	}
	n, err := setScript().Run(ctx, s.c, keys, val, ttl.Milliseconds(), flag).Int()
	return n == 1, wrap(err)
}

// index puts a counter of a family into the family's index, and counts
// the change in the family's version.
func (s *redisStore) index(ctx context.Context, key string) error {
	d, err := s.c.PTTL(ctx, prefix+key).Result()
	if err != nil {
		return err
	}
	score := math.Inf(1)
	if d > 0 {
		score = float64(time.Now().Add(d).UnixMilli())
	}
	f := Family(key)
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, indexKey(f), redis.Z{Score: score, Member: prefix + key})
		p.Incr(ctx, versionKey(f))
		return nil
	})
	return err
}

// indexKey is the sorted set of a family's keys, versionKey the counter
// of its changes.
func indexKey(family string) string   { return prefix + "index:" + family }
func versionKey(family string) string { return prefix + "version:" + family }

// Version names the state of a family's entries: the count of changes
// its writers made, and the size of its index, which also changes when
// a writer that does not count (an older mf, a person with redis-cli)
// adds or deletes an entry. An entry that expires changes only the size,
// once a reader drops it from the index (scanFamily): a read more, never
// a change missed.
func (s *redisStore) Version(ctx context.Context, family string) (string, error) {
	p := s.c.Pipeline()
	n := p.Get(ctx, versionKey(family))
	card := p.ZCard(ctx, indexKey(family))
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return "", wrap(err)
	}
	return n.Val() + " " + strconv.FormatInt(card.Val(), 10), nil
}

func (s *redisStore) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	_, err := s.set(ctx, key, val, ttl, false)
	return err
}

func (s *redisStore) SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	return s.set(ctx, key, val, ttl, true)
}

func (s *redisStore) Get(ctx context.Context, key string) (Entry, bool, error) {
	es, err := s.fetch(ctx, []string{prefix + key})
	if err != nil || len(es) == 0 {
		return Entry{}, false, err
	}
	return es[0], true, nil
}

// fetch reads values and expiries of keys in one round trip; keys gone
// meanwhile, and lease sets, are left out.
func (s *redisStore) fetch(ctx context.Context, keys []string) ([]Entry, error) {
	p := s.c.Pipeline()
	gets := make([]*redis.StringCmd, len(keys))
	ttls := make([]*redis.DurationCmd, len(keys))
	for i, k := range keys {
		gets[i] = p.Get(ctx, k)
		ttls[i] = p.PTTL(ctx, k)
	}
	now := time.Now()
	_, err := p.Exec(ctx)
	if err != nil && !errors.Is(err, redis.Nil) && !strings.HasPrefix(err.Error(), "WRONGTYPE") {
		return nil, wrap(err)
	}
	var out []Entry
	for i, k := range keys {
		v, err := gets[i].Bytes()
		if err != nil {
			continue
		}
		e := Entry{Key: strings.TrimPrefix(k, prefix), Value: v}
		if d := ttls[i].Val(); d > 0 {
			e.Expires = now.Add(d)
		}
		out = append(out, e)
	}
	return out, nil
}

var globEscaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)

func (s *redisStore) Scan(ctx context.Context, pfx string) ([]Entry, error) {
	var keys []string
	if f := Family(pfx); f != "" {
		return s.scanFamily(ctx, f, pfx)
	}
	it := s.c.Scan(ctx, 0, globEscaper.Replace(prefix+pfx)+"*", 1000).Iterator()
	for it.Next(ctx) {
		keys = append(keys, it.Val())
	}
	if err := it.Err(); err != nil {
		return nil, wrap(err)
	}
	// SCAN may return a key twice; sort and dedupe.
	slices.Sort(keys)
	return s.fetchAll(ctx, slices.Compact(keys))
}

// scanFamily reads a family's index instead of walking every key,
// dropping index entries of keys that expired meanwhile.
func (s *redisStore) scanFamily(ctx context.Context, f, pfx string) ([]Entry, error) {
	idx := indexKey(f)
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	if err := s.c.ZRemRangeByScore(ctx, idx, "-inf", "("+now).Err(); err != nil {
		return nil, wrap(err)
	}
	all, err := s.c.ZRange(ctx, idx, 0, -1).Result()
	if err != nil {
		return nil, wrap(err)
	}
	var keys []string
	for _, k := range all {
		if strings.HasPrefix(k, prefix+pfx) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return s.fetchAll(ctx, keys)
}

func (s *redisStore) fetchAll(ctx context.Context, keys []string) ([]Entry, error) {
	var out []Entry
	for len(keys) > 0 {
		n := min(len(keys), 500)
		es, err := s.fetch(ctx, keys[:n])
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
		keys = keys[n:]
	}
	return out, nil
}

// delScript deletes a key and, for a key of a family, its entry in the
// family's index, counting the change in the family's version.
var delScript = sync.OnceValue(func() *redis.Script {
	return redis.NewScript(`
local n = redis.call('DEL', KEYS[1])
if KEYS[2] then
	redis.call('ZREM', KEYS[2], KEYS[1])
	if n > 0 then redis.call('INCR', KEYS[3]) end
end
return n`)
})

func (s *redisStore) Delete(ctx context.Context, key string) (bool, error) {
	keys := []string{prefix + key}
	if f := Family(key); f != "" {
		keys = append(keys, indexKey(f), versionKey(f))
	}
	n, err := delScript().Run(ctx, s.c, keys).Int()
	return n > 0, wrap(err)
}

// leaseScript keeps a lease set as a sorted set scored by expiry, using
// the server's clock so that hosts with skewed clocks agree.
var leaseScript = sync.OnceValue(func() *redis.Script {
	return redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
local ok = 0
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or n < tonumber(ARGV[2]) then
	redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
	redis.call('PEXPIRE', KEYS[1], ARGV[3])
	ok = 1
end
return {ok, redis.call('ZCARD', KEYS[1])}`)
})

func (s *redisStore) Lease(ctx context.Context, key, id string, limit int, ttl time.Duration) (bool, int, error) {
	r, err := leaseScript().Run(ctx, s.c, []string{prefix + "lease:" + key}, id, limit, ttl.Milliseconds()).Int64Slice()
	if err != nil {
		return false, 0, wrap(err)
	}
	return r[0] == 1, int(r[1]), nil
}

func (s *redisStore) Release(ctx context.Context, key, id string) error {
	return wrap(s.c.ZRem(ctx, prefix+"lease:"+key, id).Err())
}

// Expire has nothing to do: Redis drops keys at their TTL.
func (s *redisStore) Expire(context.Context) (int, error) { return 0, nil }
