module github.com/coexai/coexai-go

go 1.19
