module github.com/lance-go/lance/lnc-client

go 1.26

require (
	github.com/lance-go/lance/lnc-core v0.0.0
	github.com/lance-go/lance/lnc-network v0.0.0
)

require (
	github.com/klauspost/compress v1.20.4 // indirect
	github.com/pierrec/lz4/v4 v4.1.33 // indirect
	go.uber.org/goleak v1.3.0
)

replace (
	github.com/lance-go/lance/lnc-core => ../lnc-core
	github.com/lance-go/lance/lnc-network => ../lnc-network
)
