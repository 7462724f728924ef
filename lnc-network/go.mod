module github.com/lance-go/lance/lnc-network

go 1.26

require (
	github.com/klauspost/compress v1.20.4
	github.com/lance-go/lance/lnc-core v0.0.0
	github.com/pierrec/lz4/v4 v4.1.33
)

replace github.com/lance-go/lance/lnc-core => ../lnc-core
