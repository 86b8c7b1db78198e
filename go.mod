module github.com/aucloud/certagent

go 1.26.0
