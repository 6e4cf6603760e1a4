module mf

go 1.26.8

require (
	github.com/alecthomas/kong v1.17.0 // indirect
	github.com/emersion/go-message v0.18.2 // indirect
	github.com/gaissmai/bart v0.30.0 // indirect
	github.com/peterbourgon/ff/v3 v3.4.0 // indirect
	github.com/klauspost/compress v1.20.3
	github.com/ulikunitz/xz v0.5.17
)
