#pragma once
// The executor every consumer runs on: a strand, so one connection's code
// never runs on two threads at once.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/strand.hpp>

namespace channels {

using Strand = boost::asio::strand<boost::asio::any_io_executor>;

}  // namespace channels
