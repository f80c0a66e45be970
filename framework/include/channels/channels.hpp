#pragma once
// Everything an app needs.

#include <channels/async_consumer.hpp>
#include <channels/client.hpp>
#include <channels/config.hpp>
#include <channels/consumer.hpp>
#include <channels/http_consumer.hpp>
#include <channels/layer.hpp>
#include <channels/layers/in_memory.hpp>
#include <channels/layers/redis.hpp>
#include <channels/layers/redis_pubsub.hpp>
#include <channels/message.hpp>
#include <channels/origin_validator.hpp>
#include <channels/registry.hpp>
#include <channels/routing.hpp>
#include <channels/run.hpp>
#include <channels/run_blocking.hpp>
#include <channels/scope.hpp>
#include <channels/server.hpp>
#include <channels/websocket_consumer.hpp>
