module mf

go 1.26.8

require (
	github.com/alecthomas/kong v1.17.0 // indirect
	github.com/emersion/go-message v0.18.2 // indirect
	github.com/gaissmai/bart v0.30.0 // indirect
	github.com/peterbourgon/ff/v3 v3.4.0 // indirect
	github.com/redis/go-redis/v9 v9.23.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
