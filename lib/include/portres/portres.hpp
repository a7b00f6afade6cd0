// Umbrella header: everything public in portres.
#ifndef PORTRES_PORTRES_HPP
#define PORTRES_PORTRES_HPP

#include "portres/association.hpp"
#include "portres/backend.hpp"
#include "portres/error.hpp"
#include "portres/persistent.hpp"
#include "portres/reservation.hpp"
#include "portres/socket_pool.hpp"
#include "portres/types.hpp"
#include "portres/usage.hpp"
#if defined(__linux__)
#include "portres/linux_error.hpp"
#endif

#endif
